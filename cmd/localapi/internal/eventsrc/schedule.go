// Package eventsrc runs Schedule events as EventBridge rules with a rate expression do.
package eventsrc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/lambdarun"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
)

// Invoker runs one invocation of a function by logical id.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) (lambdarun.Result, error)
}

// Schedule invokes a function at a fixed rate, as an EventBridge rule with a rate expression does (first run after
// First, then every Every). A cron expression is not run locally (reported at start).
type Schedule struct {
	Function string
	Event    samtpl.Schedule
	Invoker  Invoker
	Log      *slog.Logger
	First    time.Duration
}

// Run invokes until ctx ends.
func (s *Schedule) Run(ctx context.Context) {
	if s.Event.Every <= 0 || !s.Event.Enabled {
		return
	}
	t := time.NewTimer(s.First)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			payload, _ := json.Marshal(ScheduledEvent(s.Function, s.Event.Name, now))
			res, err := s.Invoker.Invoke(ctx, s.Function, payload)
			if ctx.Err() != nil {
				return
			}
			if err != nil || res.FunctionError != "" {
				s.Log.Warn("scheduled invocation failed", "function", s.Function, "schedule", s.Event.Expression)
			}
			t.Reset(s.Event.Every)
		}
	}
}

// ScheduledEvent is the EventBridge "Scheduled Event" a rule sends.
func ScheduledEvent(function, rule string, at time.Time) map[string]any {
	var id [16]byte
	_, _ = rand.Read(id[:])
	return map[string]any{
		"version": "0", "id": hex.EncodeToString(id[:]), "detail-type": "Scheduled Event", "source": "aws.events",
		"account": samtpl.AccountID, "time": at.UTC().Format(time.RFC3339), "region": samtpl.Region,
		"resources": []string{"arn:aws:events:" + samtpl.Region + ":" + samtpl.AccountID + ":rule/" + function + "-" + rule},
		"detail":    map[string]any{},
	}
}
