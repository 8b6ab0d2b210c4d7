package backfill

import (
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// Task kinds, in the order a job runs them: one plan task reads the device list and fans out batch tasks; each
// batch task plans a few devices with one grouped query and fans out chunk tasks; each chunk task finds its exact
// gaps and writes them. No invocation's work grows with the fleet beyond reading its id list once.
const (
	KindPlan  = "plan"
	KindBatch = "batch"
	KindChunk = "chunk"
)

// JobRef is what every task of a job carries about it.
type JobRef struct {
	ID string `json:"id"`
	Window
	Deadline time.Time `json:"deadline"`
}

func (j Job) ref() JobRef { return JobRef{ID: j.ID, Window: j.Window, Deadline: j.Deadline} }

// Task is one SQS message body.
type Task struct {
	Kind string `json:"kind"`
	Job  JobRef `json:"job"`
	// plan: every registered device (All) or the listed ones; batch: the batch's devices.
	All     bool     `json:"all,omitempty"`
	Devices []string `json:"devices,omitempty"`
	Batch   int      `json:"batch,omitempty"`
	// First is the job-wide index of the batch's first device (a device's index numbers its chunks).
	First int `json:"first,omitempty"`
	// chunk: the chunks the task writes, one after the other (several devices' chunks share a task, so a fleet's
	// backfill is a few hundred messages and invocations, not one per device and day).
	Chunks []ChunkRef `json:"chunks,omitempty"`
}

// ChunkRef is one chunk of a chunk task: the device, the window (Unix minutes, inside the job's window), its
// number in the job (device index × seqPerDevice + the chunk's number) and how many chunks the device has.
type ChunkRef struct {
	DeviceID string `json:"deviceId"`
	Window   Range  `json:"window"`
	Seq      int64  `json:"seq"`
	Of       int    `json:"of"`
	// Missing is the points the plan found missing for the device (on its first chunk only).
	Missing int64 `json:"missing,omitempty"`
}

// device is the index of the chunk's device in the job's device list (the job counts each device once).
func (c ChunkRef) device() int64 { return c.Seq / seqPerDevice }

func (c ChunkRef) window() Window {
	return Window{From: time.Unix(c.Window[0]*60, 0).UTC(), To: time.Unix(c.Window[1]*60, 0).UTC()}
}

// Limits on tasks received from the queue.
const (
	// MaxBatchDevices caps the devices of a batch task (and of an explicit plan list in a message).
	MaxBatchDevices = 1000
	// seqPerDevice spaces chunk numbers: a device never has more chunks than a 30-day window has minutes.
	seqPerDevice = MaxChunkMinutes + 1
)

// Validate checks a task received from the network (an SQS message body).
func (t Task) Validate() error {
	if err := CheckJobID(t.Job.ID); err != nil {
		return err
	}
	j := t.Job
	if !j.From.Before(j.To) || j.Minutes() > MaxChunkMinutes || j.Deadline.Before(j.To) {
		return api.InvalidParam("job", "task carries an inconsistent job")
	}
	switch t.Kind {
	case KindPlan, KindBatch:
		if len(t.Devices) > MaxBatchDevices || (t.Kind == KindBatch && len(t.Devices) == 0) || (t.All && len(t.Devices) > 0) {
			return api.InvalidParam("devices", "task has a bad device list")
		}
		for _, id := range t.Devices {
			if err := api.CheckDeviceID(id); err != nil {
				return err
			}
		}
		if t.Batch < 0 || t.First < 0 || t.First > 1<<31 {
			return api.InvalidParam("batch", "bad batch number")
		}
	case KindChunk:
		if len(t.Chunks) == 0 || len(t.Chunks) > MaxBatchDevices {
			return api.InvalidParam("chunks", "task has a bad chunk list")
		}
		from, to := j.From.Unix()/60, j.To.Unix()/60
		for _, c := range t.Chunks {
			if err := api.CheckDeviceID(c.DeviceID); err != nil {
				return err
			}
			if c.Window[0] < from || c.Window[1] > to || c.Window[1] <= c.Window[0] {
				return api.InvalidParam("window", "chunk window outside its job's window")
			}
			if c.Of < 1 || c.Of > seqPerDevice || c.Seq < 0 || c.Seq > int64(1<<31)*seqPerDevice || c.Missing < 0 ||
				c.Missing > MaxChunkMinutes {
				return api.InvalidParam("seq", "bad chunk numbering")
			}
		}
	default:
		return api.InvalidParam("kind", "unknown task kind")
	}
	return nil
}
