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
	AddTagsToResource(ctx context.Context, in *ssm.AddTagsToResourceInput, opts ...func(*ssm.Options)) (*ssm.AddTagsToResourceOutput, error)
	ListTagsForResource(ctx context.Context, in *ssm.ListTagsForResourceInput, opts ...func(*ssm.Options)) (*ssm.ListTagsForResourceOutput, error)
}

var _ SSMClient = (*ssm.Client)(nil)

// Tags on every role-token parameter: the token generation that wrote it (a Delete for another generation leaves
// it alone) and the stack (template.yaml lets the setup function delete a tagged parameter under an earlier
// RoleTokenPrefix, which its other statements no longer name).
const (
	TagGeneration = "iot-center:generation"
	TagStack      = "iot-center:stack"
)

// SSMStore keeps role tokens as SecureString parameters <Prefix>/<role> (the functions read theirs through
// INFLUX_TOKEN_PARAMETER). With a Generation, Put tags each parameter with it and Delete removes only parameters
// so tagged: the parameter names stay the same across generations, so the newer generation's token must survive
// the older generation's clean-up. Generation "" is a stack deployed before generations (untagged parameters).
type SSMStore struct {
	Client     SSMClient
	Prefix     string // e.g. /iot-center/roles
	Generation string
	Stack      string // the stack id (TagStack); "" writes no stack tag
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
	// PutParameter cannot tag an existing parameter (Tags and Overwrite exclude each other): tag it separately
	var tags []types.Tag
	if s.Generation != "" {
		tags = append(tags, types.Tag{Key: aws.String(TagGeneration), Value: aws.String(s.Generation)})
	}
	if s.Stack != "" {
		tags = append(tags, types.Tag{Key: aws.String(TagStack), Value: aws.String(s.Stack)})
	}
	if len(tags) == 0 {
		return nil
	}
	if _, err := s.Client.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{ResourceType: types.ResourceTypeForTaggingParameter,
		ResourceId: aws.String(s.Name(role)), Tags: tags}); err != nil {
		return fmt.Errorf("tagging SSM parameter %s: %w", s.Name(role), err)
	}
	return nil
}

// Delete removes the parameter when its token belongs to this store's generation: another generation's (a newer
// deploy that wrote the same name) is left in place.
func (s *SSMStore) Delete(ctx context.Context, role string) error {
	out, err := s.Client.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: types.ResourceTypeForTaggingParameter,
		ResourceId: aws.String(s.Name(role))})
	var invalid *types.InvalidResourceId
	var nf *types.ParameterNotFound
	if errors.As(err, &invalid) || errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the tags of SSM parameter %s: %w", s.Name(role), err)
	}
	gen := "" // untagged: written before generations
	for _, t := range out.TagList {
		if aws.ToString(t.Key) == TagGeneration {
			gen = aws.ToString(t.Value)
		}
	}
	if gen != s.Generation {
		return nil
	}
	_, err = s.Client.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(s.Name(role))})
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("deleting SSM parameter %s: %w", s.Name(role), err)
	}
	return nil
}
