package app

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
)

// printBanner prints where the API runs, the keys, the routes and a curl walkthrough.
func printBanner(w io.Writer, base string, db *influxInstance, keys keyPair, tpl *samtpl.Template, failed []string, state string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nIoT Center local API on %s  (InfluxDB %s, org %s; state in %s)\n", base, db.URL, db.Org, state)
	fmt.Fprintf(&b, "Keys (kept in %s, mode 0600):\n  IOT_OPERATOR_KEY=%s\n  IOT_DEVICE_KEY=%s\n", filepath.Join(state, "keys.env"), keys.Operator, keys.Device)
	b.WriteString("Routes:\n")
	routes := append([]samtpl.Route(nil), tpl.Routes...)
	sort.Slice(routes, func(i, j int) bool { return routes[i].Path+routes[i].Method < routes[j].Path+routes[j].Method })
	for _, r := range routes {
		auth := "key"
		if r.Authorizer == nil {
			auth = "public"
		}
		fmt.Fprintf(&b, "  %-7s %-42s %-22s %s\n", r.Method, r.Path, r.Function, auth)
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "NOT BUILT (their routes answer 502): %s\n", strings.Join(failed, ", "))
	}
	fmt.Fprintf(&b, `Try it:
  export OP="Authorization: Bearer %s"
  curl -s %s/api/health
  curl -s -X POST -H "$OP" %s/api/devices/dev1                  # register a device
  curl -s -H "$OP" %s/api/env/dev1                              # its configuration and token
  curl -s -X POST -H "$OP" "%s/api/devices/dev1/write-missing"  # backfill missing data
  curl -s -H "$OP" "%s/api/devices/dev1/write-missing"          # coverage
  curl -s -H "$OP" "%s/api/devices/dev1/measurements"           # dashboard data
  curl -s -X DELETE -H "$OP" %s/api/devices/dev1                # remove it
Ctrl-C stops everything.
`, keys.Operator, base, base, base, base, base, base, base)
	_, _ = io.WriteString(w, b.String())
}
