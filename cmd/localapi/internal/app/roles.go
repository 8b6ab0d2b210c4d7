package app

import (
	"log/slog"
	"strings"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/shared/setup"
)

// For returns the env.json variables of one function as `sam local` applies them: the global "Parameters" section,
// then the function's own section; only variables the template declares for the function are applied (SAM CLI
// ignores the others, so they are reported here). Functions run on this host, not in a container, so
// host.docker.internal (how SAM's containers reach the host) reads as 127.0.0.1.
func (e samEnvVars) For(id string, f *samtpl.Function, log *slog.Logger) map[string]string {
	out := map[string]string{}
	for _, section := range []map[string]string{e.Parameters, e.Functions[id]} {
		for k, v := range section {
			if _, declared := f.Env[k]; !declared {
				if log != nil {
					log.Warn("env.json sets a variable the template does not declare for this function (sam local ignores it too)", "function", id, "var", k)
				}
				continue
			}
			out[k] = strings.ReplaceAll(v, "host.docker.internal", "127.0.0.1")
		}
	}
	return out
}

// functionToken is the InfluxDB token a function gets locally, chosen the way the template chooses its SSM
// parameter: INFLUX_TOKEN_PARAMETER naming the admin token's parameter gets the admin token, one under
// RoleTokenPrefix gets that role's token from setup, an empty one gets no token.
func functionToken(f *samtpl.Function, tpl *samtpl.Template, db *influxInstance, roles map[string]string, log *slog.Logger) string {
	switch role := functionRole(f, tpl); role {
	case "":
		return ""
	case setup.AdminRole:
		return db.Token
	default:
		if tok := roles[role]; tok != "" {
			return tok
		}
	}
	// -skip-setup on a fresh state folder: no role tokens yet
	log.Warn("no role token for the function: it gets the admin token (run once without -skip-setup)", "function", f.LogicalID,
		"parameter", f.Env["INFLUX_TOKEN_PARAMETER"])
	return db.Token
}
