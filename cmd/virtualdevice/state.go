package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The device's memory across restarts: the configuration it was last given, its credential (influx_token)
// included, in a file only its owner can read, as real firmware keeps its provisioned credential in flash.

// savedState is the state file's content.
type savedState struct {
	ID     string    `json:"id"`
	API    string    `json:"api"`
	Config envConfig `json:"config"`
}

// loadState reads the state file; a missing file is (nil, nil).
func loadState(path, id string) (*envConfig, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s savedState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if s.ID != id {
		return nil, fmt.Errorf("state file %s belongs to device %q, not %q", path, s.ID, id)
	}
	if err := s.Config.complete(); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &s.Config, nil
}

// saveState writes the state file (mode 0600) aside and renames it, so a crash never leaves half a credential.
func saveState(path, api string, cfg envConfig) error {
	b, err := json.MarshalIndent(savedState{ID: cfg.ID, API: api, Config: cfg}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readHandover reads a configuration the operator hands over: the JSON answer of GET /api/env/{id} or of
// POST /api/devices/{id}/rotate, or its text/plain form (`key: value` lines). A missing file is (nil, nil).
func readHandover(path, id string) (*envConfig, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cfg envConfig
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		if err := json.Unmarshal(t, &cfg); err != nil {
			return nil, fmt.Errorf("configuration file %s: %w", path, err)
		}
	} else if err := cfg.parseText(string(b)); err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", path, err)
	}
	if cfg.ID != id {
		return nil, fmt.Errorf("configuration file %s is for device %q, not %q", path, cfg.ID, id)
	}
	if err := cfg.complete(); err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", path, err)
	}
	return &cfg, nil
}

// parseText reads the `key: value` form of the configuration.
func (c *envConfig) parseText(s string) error {
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "influx_url":
			c.InfluxURL = v
		case "influx_org":
			c.InfluxOrg = v
		case "influx_token":
			c.InfluxToken = v
		case "influx_bucket":
			c.InfluxBucket = v
		case "id":
			c.ID = v
		case "default_lat":
			c.DefaultLat, err = strconv.ParseFloat(v, 64)
		case "default_lon":
			c.DefaultLon, err = strconv.ParseFloat(v, 64)
		case "measurement_interval":
			c.MeasurementInterval, err = strconv.Atoi(v)
		case "configuration_refresh":
			c.ConfigurationRefresh, err = strconv.Atoi(v)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// complete reports a configuration a device cannot write with.
func (c envConfig) complete() error {
	if c.InfluxURL == "" || c.InfluxToken == "" || c.InfluxBucket == "" || c.InfluxOrg == "" {
		return errors.New("configuration lacks influx_url, influx_token, influx_bucket or influx_org")
	}
	return nil
}
