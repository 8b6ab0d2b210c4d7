package deviceapi

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// EnvConfig is the iot-center-v2 device configuration, field order as the original answers it.
type EnvConfig struct {
	InfluxURL            string  `json:"influx_url"`
	InfluxOrg            string  `json:"influx_org"`
	InfluxToken          string  `json:"influx_token"`
	InfluxBucket         string  `json:"influx_bucket"`
	ID                   string  `json:"id"`
	DefaultLon           float64 `json:"default_lon"`
	DefaultLat           float64 `json:"default_lat"`
	MeasurementInterval  int     `json:"measurement_interval"`
	NewlyRegistered      bool    `json:"newlyRegistered"`
	CreatedAt            string  `json:"createdAt"`
	UpdatedAt            string  `json:"updatedAt"`
	ServerTime           string  `json:"serverTime"`
	ConfigurationRefresh int     `json:"configuration_refresh"`
	// WriteEndpoint is the base URL of the InfluxDB write API the device writes to (iot-center-v2 clients pass it to
	// their InfluxDB client, falling back to the server's /influx proxy when empty): the same as influx_url here.
	WriteEndpoint string `json:"write_endpoint"`
}

// Text renders the configuration as `key: value` lines (the Arduino client's format), same keys and order.
func (c EnvConfig) Text() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	lines := [][2]string{
		{"influx_url", c.InfluxURL}, {"influx_org", c.InfluxOrg}, {"influx_token", c.InfluxToken},
		{"influx_bucket", c.InfluxBucket}, {"id", c.ID}, {"default_lon", f(c.DefaultLon)}, {"default_lat", f(c.DefaultLat)},
		{"measurement_interval", strconv.Itoa(c.MeasurementInterval)}, {"newlyRegistered", strconv.FormatBool(c.NewlyRegistered)},
		{"createdAt", c.CreatedAt}, {"updatedAt", c.UpdatedAt}, {"serverTime", c.ServerTime},
		{"configuration_refresh", strconv.Itoa(c.ConfigurationRefresh)}, {"write_endpoint", c.WriteEndpoint},
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l[0] + ": " + l[1] + "\n")
	}
	return b.String()
}

// envConfig is the device's configuration. influx_token is d.Token: the InfluxDB token (direct mode), the device
// credential (gateway mode: only for its creator and the device itself), else "". In gateway mode influx_url is
// the API's base URL, so an unmodified client writes through the gateway's /api/v2/write.
func (s *Service) envConfig(r *http.Request, d registry.Device, created bool) EnvConfig {
	c := EnvConfig{
		InfluxURL: s.cfg.InfluxPublicURL, InfluxOrg: s.cfg.Org, InfluxToken: d.Token.Reveal(), InfluxBucket: s.cfg.Bucket,
		ID: d.ID, DefaultLat: s.cfg.DefaultLat, DefaultLon: s.cfg.DefaultLon, MeasurementInterval: s.cfg.MeasurementInterval,
		NewlyRegistered: created, CreatedAt: rfc3339(d.CreatedAt), UpdatedAt: rfc3339(d.UpdatedAt),
		ServerTime: serverTime(s.now()), ConfigurationRefresh: s.cfg.ConfigurationRefresh,
	}
	if s.cfg.Gateway() {
		c.InfluxURL = publicAPIURL(r, s.cfg.PublicAPIURL)
	}
	c.WriteEndpoint = c.InfluxURL
	return c
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// serverTime formats t as JavaScript's toISOString() does (the original's serverTime): UTC, exactly 3 fraction digits.
func serverTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// writeConfig answers the configuration as JSON, or as text lines when the caller asks for text/plain.
func writeConfig(w http.ResponseWriter, status int, c EnvConfig, text bool) {
	if !text {
		api.WriteJSON(w, status, c)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(c.Text()))
}

// hostPattern is what a Host header may hold to be handed to devices (a DNS name or IPv4 address, optional port).
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?$`)

// publicAPIURL is PUBLIC_API_URL, else the base URL the request came to: API Gateway's domain name (the request's
// Host) and X-Forwarded-Proto (https unless it says http).
func publicAPIURL(r *http.Request, configured string) string {
	if configured != "" {
		return configured
	}
	scheme := "https"
	if strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "http") {
		scheme = "http"
	}
	host := r.Host
	if !hostPattern.MatchString(host) {
		host = "localhost" // never echo a malformed Host; PUBLIC_API_URL is the fix for such deployments
	}
	return scheme + "://" + host
}
