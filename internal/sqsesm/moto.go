// Package sqsesm is a local SQS event source mapping, the part of the Lambda service that polls a queue and invokes a
// function with its messages, over moto's SQS server (a stand-in for SQS, which cannot run here). The local API
// (cmd/localapi) runs the template's mappings with it; tests run the worker in-process with it.
package sqsesm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Moto is a running moto server (python3 -m moto.server).
type Moto struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMoto runs moto's server on a free loopback port and waits (bounded) until it listens.
func StartMoto(ctx context.Context, out io.Writer) (*Moto, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto (python3 -m moto.server): %w", err)
	}
	m := &Moto{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			return m, nil
		}
		select {
		case <-m.done:
			return nil, errors.New("moto exited at start (is moto installed? pip install 'moto[server]')")
		case <-ctx.Done():
			m.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, errors.New("moto did not listen within 60s")
		}
	}
}

// Stop ends the server.
func (m *Moto) Stop() {
	if m == nil || m.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// Region is the region of local queues (their ARNs and events).
const Region = "us-east-1"

// NewSQSClient is an SQS client for endpoint with fake credentials (they never leave this machine).
func NewSQSClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// Queue is a created queue.
type Queue struct {
	URL, ARN string
}

// QueueSpec is a queue to create (an AWS::SQS::Queue's properties).
type QueueSpec struct {
	VisibilityTimeout int // seconds
	RetentionPeriod   int // seconds
	// DeadLetter names the redrive policy's target queue ("" when none), MaxReceiveCount its count.
	DeadLetter      string
	MaxReceiveCount int
}

// CreateQueues creates the template's queues (named by logical id; dead-letter targets first, so a redrive policy
// can name their ARN) and returns them by logical id. Creating an existing queue with the same attributes is a no-op.
func CreateQueues(ctx context.Context, c *sqs.Client, queues map[string]QueueSpec) (map[string]Queue, error) {
	out := map[string]Queue{}
	var create func(id string, depth int) error
	create = func(id string, depth int) error {
		if _, ok := out[id]; ok {
			return nil
		}
		q, ok := queues[id]
		if !ok || depth > len(queues) {
			return fmt.Errorf("queue %s: not a queue of the template (or a redrive cycle)", id)
		}
		attrs := map[string]string{
			string(types.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(q.VisibilityTimeout),
			string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(q.RetentionPeriod),
		}
		if q.DeadLetter != "" {
			if err := create(q.DeadLetter, depth+1); err != nil {
				return err
			}
			rp, _ := json.Marshal(map[string]string{"deadLetterTargetArn": out[q.DeadLetter].ARN,
				"maxReceiveCount": strconv.Itoa(q.MaxReceiveCount)})
			attrs[string(types.QueueAttributeNameRedrivePolicy)] = string(rp)
		}
		res, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(id), Attributes: attrs})
		if err != nil {
			return fmt.Errorf("creating queue %s: %w", id, err)
		}
		got, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: res.QueueUrl,
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
		if err != nil {
			return fmt.Errorf("reading queue %s: %w", id, err)
		}
		out[id] = Queue{URL: aws.ToString(res.QueueUrl), ARN: got.Attributes[string(types.QueueAttributeNameQueueArn)]}
		return nil
	}
	for id := range queues {
		if err := create(id, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}
