package backfill

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// recentKey indexes a job under one partition (JOBS) by creation time: the newest jobs are one Query away. Jobs
// are created a few at a time by operators, far below what one partition takes.
func recentKey(j Job) store.Item {
	return store.Key(recentPK, fmt.Sprintf("%013d#%s", j.CreatedAt.UnixMilli(), j.ID))
}

const recentPK = "JOBS"

// MaxRecent bounds Recent's n.
const MaxRecent = 50

// Recent returns the newest jobs, at most n (1..MaxRecent), newest first: one Query of the index, then each job's
// item (a job whose item is gone or expired is skipped).
func (s *JobStore) Recent(ctx context.Context, n int, now time.Time) ([]Job, error) {
	n = max(1, min(n, MaxRecent))
	out, err := s.Table.DB.Query(ctx, &dynamodb.QueryInput{TableName: &s.Table.Name,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: store.Item{":pk": store.S(recentPK)},
		ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(int32(2 * n))})
	if err != nil {
		return nil, store.Classify(err)
	}
	jobs := []Job{}
	for _, it := range out.Items {
		if len(jobs) == n {
			break
		}
		id := store.Str(it, "job")
		if store.Expired(it, time.Now()) || CheckJobID(id) != nil {
			continue
		}
		j, err := s.Get(ctx, id, now)
		if api.IsCode(err, api.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}
