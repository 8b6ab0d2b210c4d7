package deviceapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// MaxBulk is the most ids one bulk registration takes.
const MaxBulk = 1000

// RouteBulk is the bulk registration route, as declared in template.yaml.
const RouteBulk = "POST /api/devices"

// BulkRequest is POST /api/devices's body.
type BulkRequest struct {
	DeviceIDs []string `json:"deviceIds"`
}

// BulkAnswer is POST /api/devices's answer: every id's outcome in the request's order, and their numbers.
type BulkAnswer struct {
	Devices  []registry.BulkResult `json:"devices"`
	Created  int                   `json:"created"`
	Existing int                   `json:"existing"`
	Limit    int                   `json:"limit"`
	Failed   int                   `json:"failed"`
}

// Bulk is POST /api/devices (operator): up to MaxBulk registrations with each id's outcome. Any bad id refuses the
// whole request (400) before anything is registered; a repeated request is safe, its created ids then existing.
func (s *Service) Bulk(w http.ResponseWriter, r *http.Request) {
	if _, err := api.Query(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var req BulkRequest
	if err := decodeBulk(r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if n := len(req.DeviceIDs); n == 0 || n > MaxBulk {
		api.WriteError(w, r, &api.Error{Code: api.Invalid, Param: "deviceIds",
			Message: "deviceIds must hold 1 to " + strconv.Itoa(MaxBulk) + " device ids"})
		return
	}
	seen := make(map[string]bool, len(req.DeviceIDs))
	for i, id := range req.DeviceIDs {
		if !api.ValidDeviceID(id) || seen[id] {
			api.WriteError(w, r, &api.Error{Code: api.Invalid, Param: "deviceIds",
				Message: "deviceIds[" + strconv.Itoa(i) + "] is not a device id, or repeats one; nothing was registered",
				Extra:   map[string]any{"index": i}})
			return
		}
		seen[id] = true
	}
	res, err := s.reg.BulkRegister(r.Context(), req.DeviceIDs)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	a := BulkAnswer{Devices: res}
	for _, d := range res {
		switch d.Outcome {
		case registry.BulkCreated:
			a.Created++
		case registry.BulkExisting:
			a.Existing++
		case registry.BulkLimit:
			a.Limit++
		default:
			a.Failed++
		}
	}
	api.Logger(r.Context()).InfoContext(r.Context(), "bulk registration", "created", a.Created, "existing", a.Existing,
		"limit", a.Limit, "failed", a.Failed)
	api.WriteJSON(w, http.StatusOK, a)
}

// bulkBodyBytes caps POST /api/devices's body: MaxBulk ids of the longest kind, quoted, and the object around them.
const bulkBodyBytes = MaxBulk*(64+3) + 1024

// decodeBulk reads the body as api.DecodeJSON does, under bulkBodyBytes instead of api.MaxBodyBytes.
func decodeBulk(r *http.Request, v *BulkRequest) error {
	if r.Body == nil {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, bulkBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return api.Errorf(api.TooLarge, "request body larger than %d bytes", bulkBodyBytes)
		}
		return &api.Error{Code: api.Invalid, Param: "body", Message: "request body must be {\"deviceIds\": [...]}"}
	}
	if dec.More() {
		return &api.Error{Code: api.Invalid, Param: "body", Message: "request body must hold a single JSON object"}
	}
	return nil
}
