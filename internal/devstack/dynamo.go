package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"gopkg.in/yaml.v3"
)

// StateTableID is the control-plane table's logical id in template.yaml.
const StateTableID = "StateTable"

// TableSpec is the part of an AWS::DynamoDB::Table definition a local table is created from (keys, indexes, TTL).
type TableSpec struct {
	AttributeDefinitions []struct {
		AttributeName string `yaml:"AttributeName"`
		AttributeType string `yaml:"AttributeType"`
	} `yaml:"AttributeDefinitions"`
	KeySchema              []KeyElement `yaml:"KeySchema"`
	GlobalSecondaryIndexes []struct {
		IndexName  string       `yaml:"IndexName"`
		KeySchema  []KeyElement `yaml:"KeySchema"`
		Projection struct {
			ProjectionType   string   `yaml:"ProjectionType"`
			NonKeyAttributes []string `yaml:"NonKeyAttributes"`
		} `yaml:"Projection"`
	} `yaml:"GlobalSecondaryIndexes"`
	TimeToLiveSpecification *struct {
		AttributeName string `yaml:"AttributeName"`
		Enabled       bool   `yaml:"Enabled"`
	} `yaml:"TimeToLiveSpecification"`
}

// KeyElement is one attribute of a key schema (KeyType HASH or RANGE).
type KeyElement struct {
	AttributeName string `yaml:"AttributeName"`
	KeyType       string `yaml:"KeyType"`
}

// ReadTableSpec reads the table resource id of the template at path (keys, attributes, TTL), so tests and the
// local API create the table the stack declares.
func ReadTableSpec(path, id string) (TableSpec, error) {
	var spec TableSpec
	b, err := os.ReadFile(path)
	if err != nil {
		return spec, err
	}
	// A yaml.Node keeps CloudFormation's short-form tags (!Ref, !Sub) without resolving them.
	var doc struct {
		Resources map[string]yaml.Node `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return spec, fmt.Errorf("%s: %w", path, err)
	}
	node, ok := doc.Resources[id]
	if !ok {
		return spec, fmt.Errorf("%s: no resource %s", path, id)
	}
	var res struct {
		Type       string    `yaml:"Type"`
		Properties TableSpec `yaml:"Properties"`
	}
	if err := node.Decode(&res); err != nil {
		return spec, fmt.Errorf("%s: %s: %w", path, id, err)
	}
	if res.Type != "AWS::DynamoDB::Table" || len(res.Properties.KeySchema) == 0 {
		return spec, fmt.Errorf("%s: %s is not a DynamoDB table with a key schema", path, id)
	}
	return res.Properties, nil
}

// CreateTable creates the table name from spec (on demand) and turns its TTL on; a table that exists already is
// kept as it is.
func CreateTable(ctx context.Context, db *dynamodb.Client, name string, spec TableSpec) error {
	in := &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest}
	for _, a := range spec.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName), AttributeType: types.ScalarAttributeType(a.AttributeType)})
	}
	for _, k := range spec.KeySchema {
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: types.KeyType(k.KeyType)})
	}
	for _, g := range spec.GlobalSecondaryIndexes {
		gsi := types.GlobalSecondaryIndex{IndexName: aws.String(g.IndexName), Projection: &types.Projection{
			ProjectionType: types.ProjectionType(g.Projection.ProjectionType), NonKeyAttributes: g.Projection.NonKeyAttributes}}
		for _, k := range g.KeySchema {
			gsi.KeySchema = append(gsi.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: types.KeyType(k.KeyType)})
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	if _, err := db.CreateTable(ctx, in); err != nil {
		var inUse *types.ResourceInUseException
		if errors.As(err, &inUse) {
			return nil
		}
		return fmt.Errorf("creating table %s: %w", name, err)
	}
	if ttl := spec.TimeToLiveSpecification; ttl != nil && ttl.Enabled {
		if _, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(name),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(ttl.AttributeName), Enabled: aws.Bool(true)}}); err != nil {
			return fmt.Errorf("table %s: turning TTL on: %w", name, err)
		}
	}
	return nil
}

// DynamoClient is a DynamoDB client for the endpoint url in region (the stand-in keeps a table set per region)
// with the fake credentials the stand-in accepts.
func DynamoClient(url, region string) *dynamodb.Client {
	return dynamodb.NewFromConfig(aws.Config{Region: region, BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
}

// LaunchDynamo runs moto's server as the stand-in for DynamoDB, in a process of its own (not the one serving
// SQS: its queue polling would slow the table down), and creates the table name there from template's StateTable.
func LaunchDynamo(ctx context.Context, out io.Writer, template, name, region string) (*Moto, error) {
	spec, err := ReadTableSpec(template, StateTableID)
	if err != nil {
		return nil, err
	}
	m, err := LaunchDynamoDB(ctx, out)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := CreateTable(cctx, DynamoClient(m.URL, region), name, spec); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}
