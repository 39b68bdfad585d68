package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/offline-push/offline-push/shared/push"
)

// Attributes of an access token item in RequestTable (pk "k#{key}"):
//
//	v  S  the token
//	m  N  when it was minted, epoch ms
//	e  N  when it expires, epoch ms; 0 when unknown
//	ttl N epoch seconds: e, or m + credentialFallbackTTL when e is unknown
const (
	credValue   = "v"
	credMinted  = "m"
	credExpires = "e"
)

// credentialFallbackTTL keeps an item whose token has no known expiry from
// living for ever.
const credentialFallbackTTL = 24 * time.Hour

// credentialSwapRounds bounds Swap's rounds when the item it expects
// vanishes between its requests (DynamoDB TTL removed it).
const credentialSwapRounds = 3

// CredentialCache shares vendor access tokens (APNs provider JWTs, vendor
// OAuth tokens) among every container of every function, because vendors
// rate-limit minting: Apple refuses provider tokens renewed more often than
// every 20 minutes. Each token lives in one item of RequestTable, replaced
// only by a conditional write, so containers that mint at the same time
// agree on one winner.
type CredentialCache struct {
	client Client
	table  string
}

// NewCredentialCache returns a cache over the RequestTable named table.
func NewCredentialCache(client Client, table string) *CredentialCache {
	return &CredentialCache{client: client, table: table}
}

func credentialKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: deviceS("k#" + key)}
}

// Load returns the token stored under key, strongly consistent, and false
// when there is none. A stored token is returned even past its expiry or its
// TTL: the caller decides whether it is still good, and must pass it to Swap
// as prev to replace it.
func (c *CredentialCache) Load(ctx context.Context, key string) (push.AccessToken, bool, error) {
	out, err := c.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(c.table),
		Key:            credentialKey(key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return push.AccessToken{}, false, fmt.Errorf("load access token %s: %w", key, msgError(err))
	}
	if out.Item == nil {
		return push.AccessToken{}, false, nil
	}
	tok, err := decodeAccessToken(out.Item)
	if err != nil {
		return push.AccessToken{}, false, fmt.Errorf("access token %s: %w", key, err)
	}
	return tok, true, nil
}

// Swap stores next under key if the stored token is still prev (nil: if
// none is stored), and returns next. Otherwise another container got there
// first, and Swap returns the token it stored, unchanged: the caller uses
// that one instead of its own. Tokens are compared by value and minting
// instant.
func (c *CredentialCache) Swap(ctx context.Context, key string, prev *push.AccessToken, next push.AccessToken) (push.AccessToken, error) {
	if next.Value == "" {
		return push.AccessToken{}, fmt.Errorf("swap access token %s: empty token", key)
	}
	ttl := next.ExpiresAt
	if ttl.IsZero() {
		ttl = next.MintedAt.Add(credentialFallbackTTL)
	}
	item := credentialKey(key)
	item[credValue] = deviceS(next.Value)
	item[credMinted] = deviceN(next.MintedAt.UnixMilli())
	var expires int64 // 0: unknown
	if !next.ExpiresAt.IsZero() {
		expires = next.ExpiresAt.UnixMilli()
	}
	item[credExpires] = deviceN(expires)
	item[attrTTL] = deviceN(ttl.Unix())
	for range credentialSwapRounds {
		in := &dynamodb.PutItemInput{
			TableName:                           aws.String(c.table),
			Item:                                item,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		if prev == nil {
			in.ConditionExpression = aws.String("attribute_not_exists(#pk)")
			in.ExpressionAttributeNames = map[string]string{"#pk": attrPK}
		} else {
			in.ConditionExpression = aws.String("#v = :v AND #m = :m")
			in.ExpressionAttributeNames = map[string]string{"#v": credValue, "#m": credMinted}
			in.ExpressionAttributeValues = map[string]types.AttributeValue{
				":v": deviceS(prev.Value), ":m": deviceN(prev.MintedAt.UnixMilli()),
			}
		}
		_, err := c.client.PutItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return next, nil
		case !errors.As(err, &ccf):
			return push.AccessToken{}, fmt.Errorf("swap access token %s: %w", key, msgError(err))
		case ccf.Item == nil:
			// prev is gone (expired by TTL): compete for the empty slot.
			prev = nil
			continue
		}
		winner, err := decodeAccessToken(ccf.Item)
		if err != nil {
			return push.AccessToken{}, fmt.Errorf("access token %s: %w", key, err)
		}
		return winner, nil
	}
	return push.AccessToken{}, fmt.Errorf("swap access token %s: the item kept changing: %w", key, push.ErrConflict)
}

func decodeAccessToken(item map[string]types.AttributeValue) (push.AccessToken, error) {
	v := deviceString(item[credValue])
	if v == "" {
		return push.AccessToken{}, errors.New("item holds no token")
	}
	m, err := deviceNumber(item[credMinted])
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("minting time: %w", err)
	}
	e, err := deviceNumber(item[credExpires])
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("expiry: %w", err)
	}
	tok := push.AccessToken{Value: v, MintedAt: time.UnixMilli(m).UTC()}
	if e > 0 {
		tok.ExpiresAt = time.UnixMilli(e).UTC()
	}
	return tok, nil
}
