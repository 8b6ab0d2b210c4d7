// Command bulkregister registers the device ids listed in a file (one a line; blank lines and lines starting with #
// are skipped) through POST /api/devices, 1,000 a request, and writes every id's outcome as CSV (deviceId, outcome,
// authorizationId, token, error) to -out, created with mode 0600: it holds the new devices' credentials, which the
// API shows only this once. An id already registered is reported "existing" without a credential (rotate it if it
// was lost). Running it again over the same file is safe.
//
//	bulkregister -api https://…/ -ids devices.txt -out credentials.csv   (operator key in $IOT_OPERATOR_KEY)
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
)

func main() {
	var o options
	flag.StringVar(&o.API, "api", "http://127.0.0.1:3000", "IoT Center API base URL")
	flag.StringVar(&o.IDs, "ids", "", "file of device ids, one a line (required; - for standard input)")
	flag.StringVar(&o.Out, "out", "", "CSV file of the outcomes and credentials, created with mode 0600 (required)")
	flag.IntVar(&o.Batch, "batch", deviceapi.MaxBulk, "ids a request (at most 1000)")
	flag.Parse()
	o.Key = os.Getenv("IOT_OPERATOR_KEY")
	if err := run(context.Background(), o, os.Stdin, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bulkregister:", err)
		os.Exit(1)
	}
}

type options struct {
	API, IDs, Out, Key string
	Batch              int
}

// readIDs reads and checks the ids: every line a device id, none twice.
func readIDs(r io.Reader) ([]string, error) {
	var ids []string
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		id := strings.TrimSpace(sc.Text())
		if id == "" || strings.HasPrefix(id, "#") {
			continue
		}
		if !api.ValidDeviceID(id) {
			return nil, fmt.Errorf("line %d: %q is not a device id", n, id)
		}
		if first, ok := seen[id]; ok {
			return nil, fmt.Errorf("line %d: %s repeats line %d", n, id, first)
		}
		seen[id] = n
		ids = append(ids, id)
	}
	return ids, sc.Err()
}

func run(ctx context.Context, o options, stdin io.Reader, log io.Writer) error {
	if o.IDs == "" || o.Out == "" {
		return errors.New("-ids and -out are required")
	}
	if o.Key == "" {
		return errors.New("IOT_OPERATOR_KEY is not set (the operator key)")
	}
	if o.Batch < 1 || o.Batch > deviceapi.MaxBulk {
		return fmt.Errorf("-batch must be in [1, %d]", deviceapi.MaxBulk)
	}
	in := stdin
	if o.IDs != "-" {
		f, err := os.Open(o.IDs)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	ids, err := readIDs(in)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(o.Out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	w := csv.NewWriter(out)
	_ = w.Write([]string{"deviceId", "outcome", "authorizationId", "token", "error"})
	client := &http.Client{Timeout: 2 * time.Minute}
	var total deviceapi.BulkAnswer
	for start := 0; start < len(ids); start += o.Batch {
		batch := ids[start:min(len(ids), start+o.Batch)]
		a, err := post(ctx, client, o, batch)
		if err != nil {
			w.Flush()
			return fmt.Errorf("ids %d to %d: %w (the outcomes so far are in %s; running again is safe)", start+1, start+len(batch), err, o.Out)
		}
		for _, d := range a.Devices {
			_ = w.Write([]string{d.DeviceID, d.Outcome, d.AuthorizationID, d.Token, d.Error})
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		total.Created += a.Created
		total.Existing += a.Existing
		total.Limit += a.Limit
		total.Failed += a.Failed
		fmt.Fprintf(log, "%d/%d: %d created, %d existing, %d over the device limit, %d failed\n", start+len(batch), len(ids),
			total.Created, total.Existing, total.Limit, total.Failed)
	}
	if total.Failed > 0 || total.Limit > 0 {
		return fmt.Errorf("%d ids failed and %d are over the device limit (see %s)", total.Failed, total.Limit, o.Out)
	}
	return nil
}

// post sends one batch; a 503 or 429 answer is retried a few times after its Retry-After.
func post(ctx context.Context, client *http.Client, o options, ids []string) (deviceapi.BulkAnswer, error) {
	body, _ := json.Marshal(deviceapi.BulkRequest{DeviceIDs: ids})
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(o.API, "/")+"/api/devices", bytes.NewReader(body))
		if err != nil {
			return deviceapi.BulkAnswer{}, err
		}
		req.Header.Set("Authorization", "Bearer "+o.Key)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return deviceapi.BulkAnswer{}, err
		}
		b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
		res.Body.Close()
		if err != nil {
			return deviceapi.BulkAnswer{}, err
		}
		if (res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusTooManyRequests) && attempt < 5 {
			time.Sleep(time.Duration(attempt+1) * 2 * time.Second)
			continue
		}
		if res.StatusCode != http.StatusOK {
			return deviceapi.BulkAnswer{}, fmt.Errorf("%s: %s", res.Status, bytes.TrimSpace(b))
		}
		var a deviceapi.BulkAnswer
		if err := json.Unmarshal(b, &a); err != nil || len(a.Devices) != len(ids) {
			return deviceapi.BulkAnswer{}, fmt.Errorf("unexpected answer (%d outcomes for %d ids): %v", len(a.Devices), len(ids), err)
		}
		return a, nil
	}
}
