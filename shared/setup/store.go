package setup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// FileStore keeps role tokens as ROLE=token lines in a file readable by its owner only (`make run`'s
// .local/tokens.env).
type FileStore struct {
	Path string
	mu   sync.Mutex
}

var _ TokenStore = (*FileStore)(nil)

// All returns every stored role token.
func (f *FileStore) All() (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read()
}

func (f *FileStore) read() (map[string]string, error) {
	out := map[string]string{}
	file, err := os.Open(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out, sc.Err()
}

func (f *FileStore) write(m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# InfluxDB role tokens written by the IoT Center setup; secrets: keep private\n")
	for _, k := range keys {
		b.WriteString(k + "=" + m[k] + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return err
	}
	tmp := f.Path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, f.Path)
}

func (f *FileStore) Get(_ context.Context, role string) (string, error) {
	m, err := f.All()
	return m[role], err
}

func (f *FileStore) Put(_ context.Context, role, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return err
	}
	m[role] = token
	return f.write(m)
}

func (f *FileStore) Delete(_ context.Context, role string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return err
	}
	delete(m, role)
	return f.write(m)
}

// SSMClient is the part of the SSM API the SSMStore uses.
type SSMClient interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, opts ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	DeleteParameter(ctx context.Context, in *ssm.DeleteParameterInput, opts ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
}

var _ SSMClient = (*ssm.Client)(nil)

// SSMStore keeps role tokens as SecureString parameters <Prefix>/<role> (the functions read theirs through
// INFLUX_TOKEN_PARAMETER).
type SSMStore struct {
	Client SSMClient
	Prefix string // e.g. /iot-center/roles
}

var _ TokenStore = (*SSMStore)(nil)

// Name is the parameter name of a role's token.
func (s *SSMStore) Name(role string) string { return strings.TrimRight(s.Prefix, "/") + "/" + role }

func (s *SSMStore) Get(ctx context.Context, role string) (string, error) {
	out, err := s.Client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(s.Name(role)), WithDecryption: aws.Bool(true)})
	var nf *types.ParameterNotFound
	if errors.As(err, &nf) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading SSM parameter %s: %w", s.Name(role), err)
	}
	return aws.ToString(out.Parameter.Value), nil
}

func (s *SSMStore) Put(ctx context.Context, role, token string) error {
	_, err := s.Client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(s.Name(role)), Value: aws.String(token),
		Type: types.ParameterTypeSecureString, Overwrite: aws.Bool(true),
		Description: aws.String("IoT Center: InfluxDB token of the " + role + " role (written by the setup custom resource)")})
	if err != nil {
		return fmt.Errorf("writing SSM parameter %s: %w", s.Name(role), err)
	}
	return nil
}

func (s *SSMStore) Delete(ctx context.Context, role string) error {
	_, err := s.Client.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(s.Name(role))})
	var nf *types.ParameterNotFound
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("deleting SSM parameter %s: %w", s.Name(role), err)
	}
	return nil
}
