package overview

import (
	"net/http"
	"strconv"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// MaxAnswerBytes keeps the answer within Lambda's 6 MB response once API Gateway's path base64-encodes it (4/3),
// with room for the headers (a variable for the tests).
var MaxAnswerBytes = 4 << 20

// PositionsType is the media type of GET /api/overview/positions: positions.Encode's columnar layout.
const PositionsType = "application/vnd.iot-center.positions"

// positions answers every device's position, status and lastSeen in positions.Encode's layout, gzip-encoded when
// the client accepts it (100,000 devices are about 2.3 MB raw, well under 1 MB gzipped; as JSON they would pass
// Lambda's 6 MB response limit once base64-encoded).
func (s *Service) positions(w http.ResponseWriter, r *http.Request) {
	if _, err := api.Query(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	snap, err := s.Read(r.Context())
	if err != nil {
		api.WriteError(w, r, influx.Fail(r.Context(), err, "reading the positions snapshot"))
		return
	}
	gz := api.AcceptsEncoding(r.Header, "gzip")
	body, err := s.answers.get(snap, gz)
	if err != nil {
		api.WriteError(w, r, api.Wrap(api.Internal, err, "encoding the positions"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", PositionsType)
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Devices", strconv.Itoa(len(snap.Devices)))
	if len(body) > MaxAnswerBytes {
		if !gz {
			api.WriteError(w, r, api.InvalidParam("Accept-Encoding", "the positions of %d devices fit one answer only gzip-encoded: send Accept-Encoding: gzip", len(snap.Devices)))
			return
		}
		api.WriteError(w, r, api.Errorf(api.Unavailable, "the positions of %d devices do not fit one answer", len(snap.Devices)))
		return
	}
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
