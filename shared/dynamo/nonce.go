package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/offline-push/offline-push/shared/push"
)

// NonceLifetime is how long a spent nonce is refused as a replay (API.md §2).
// It covers the whole ±300 s timestamp window, so a request cannot be
// replayed once its nonce is forgotten: its timestamp is out of the window
// by then.
const NonceLifetime = 600 * time.Second

// Attributes of a nonce item in RequestTable.
const (
	attrNonceExp   = "exp" // expiry instant, epoch ms
	attrNonceWrite = "w"   // random id of the write that spent the nonce
)

// NonceStore records spent request nonces in RequestTable, one small item
// per (app, nonce), so that a signed request cannot be replayed. It satisfies
// httpapi.NonceStore.
type NonceStore struct {
	client Client
	table  string
}

// NewNonceStore returns a NonceStore writing to table (RequestTable).
func NewNonceStore(c Client, table string) *NonceStore {
	return &NonceStore{client: c, table: table}
}

// Spend records nonce as spent for app at now, for NonceLifetime. It returns
// push.ErrConflict when the nonce is already spent and still within its
// lifetime, and push.ErrThrottled when DynamoDB kept refusing the write.
//
// The write is one conditional PutItem. The condition also accepts an item
// whose expiry has passed, because TTL deletes items up to days late and an
// expired nonce must be free at once. Each write carries a random id: when
// the SDK retries a write whose first attempt succeeded but whose answer was
// lost, the condition fails on our own item, and the id tells that apart
// from a replay.
func (s *NonceStore) Spend(ctx context.Context, app, nonce string, now time.Time) error {
	exp := now.Add(NonceLifetime).UnixMilli()
	ttl := (exp + 999) / 1000 // rounded up: TTL must never delete an item before exp
	writeID := newWriteID()
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrPK:         &types.AttributeValueMemberS{Value: noncePK(app, nonce)},
			attrNonceExp:   &types.AttributeValueMemberN{Value: strconv.FormatInt(exp, 10)},
			attrTTL:        &types.AttributeValueMemberN{Value: strconv.FormatInt(ttl, 10)},
			attrNonceWrite: &types.AttributeValueMemberS{Value: writeID},
		},
		ConditionExpression:                 aws.String("attribute_not_exists(#pk) OR #exp < :now"),
		ExpressionAttributeNames:            map[string]string{"#pk": attrPK, "#exp": attrNonceExp},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if w, ok := ccf.Item[attrNonceWrite].(*types.AttributeValueMemberS); ok && w.Value == writeID {
			return nil // our own earlier attempt spent it
		}
		return fmt.Errorf("spend nonce of app %s: already spent: %w", app, push.ErrConflict)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded":
			return fmt.Errorf("spend nonce of app %s: %w: %w", app, push.ErrThrottled, err)
		}
	}
	return fmt.Errorf("spend nonce of app %s: %w", app, err)
}

// newWriteID returns 8 random bytes in hex, unique per write for all
// practical purposes.
func newWriteID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b[:])
}
