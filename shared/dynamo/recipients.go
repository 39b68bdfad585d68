package dynamo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/offline-push/offline-push/shared/push"
)

// Read limits of RecipientReader.
const (
	// recipientBatchKeys is the most keys one BatchGetItem may name.
	recipientBatchKeys = 100
	// recipientConcurrency bounds the BatchGetItem calls in flight at once:
	// enough to read 1,000 recipients in a few round trips, few enough not
	// to burst one partition of a large group.
	recipientConcurrency = 8
	// recipientAttempts bounds the rounds spent on keys DynamoDB leaves
	// unprocessed under load before the read gives up as throttled.
	recipientAttempts = 10
)

// RecipientQuery says which items to read for each recipient besides the
// profile (bindings and app-level settings), which is always read.
type RecipientQuery struct {
	// Presence reads the presence item (device leases).
	Presence bool
	// Conversation, when not nil, reads the recipient's own setting for that
	// conversation. For a peer message it is {peer, sender}.
	Conversation *ConversationKey
	// Call reads the callee's current call record.
	Call bool
}

// RecipientState is what was read about one recipient. Expired leases and
// DND durations are returned as stored, for the reader's clock to judge; a
// call record whose TTL has passed reads as none.
type RecipientState struct {
	UserID       string
	Bindings     []push.Binding // ordered by device id
	Leases       []push.Lease   // ordered by device id
	Settings     push.Settings  // defaults applied
	Conversation push.ConversationSettings
	Call         *CallState // nil when there is no call record
}

// RecipientReader reads the state of many recipients with BatchGetItem only:
// at most four keys per recipient (profile, presence, conversation setting,
// call), in batches of 100 keys, a bounded number of batches in flight.
//
// Reads are eventually consistent, at half the cost of strongly consistent
// ones. A presence heartbeat or settings change answered a moment before a
// message may therefore be missed by that message, which is the same race a
// message sent a moment earlier would have lost; the next message sees it.
type RecipientReader struct {
	client Client
	table  string
}

// NewRecipientReader returns a reader over the StateTable named table.
func NewRecipientReader(client Client, table string) *RecipientReader {
	return &RecipientReader{client: client, table: table}
}

// Keys returns how many item keys Read names per recipient for q.
func (q RecipientQuery) Keys() int {
	n := 1
	if q.Presence {
		n++
	}
	if q.Conversation != nil {
		n++
	}
	if q.Call {
		n++
	}
	return n
}

// Read returns the state of each of users, in the order given; users must
// hold no duplicates. now judges call records' TTL.
func (r *RecipientReader) Read(ctx context.Context, app string, users []string, q RecipientQuery, now time.Time) ([]RecipientState, error) {
	out := make([]RecipientState, len(users))
	byPK := make(map[string]int, len(users))
	keys := make([]map[string]types.AttributeValue, 0, len(users)*q.Keys())
	var convSKey string
	if q.Conversation != nil {
		convSKey = convSK(string(q.Conversation.Type), q.Conversation.ID)
	}
	for i, u := range users {
		pk := userPK(app, u)
		if _, dup := byPK[pk]; dup {
			return nil, fmt.Errorf("read recipients: user %s given twice", u)
		}
		byPK[pk] = i
		out[i] = RecipientState{UserID: u, Settings: push.DefaultSettings()}
		keys = append(keys, recipientKey(pk, skProfile))
		if q.Presence {
			keys = append(keys, recipientKey(pk, skPresence))
		}
		if convSKey != "" {
			keys = append(keys, recipientKey(pk, convSKey))
		}
		if q.Call {
			keys = append(keys, recipientKey(pk, skCall))
		}
	}

	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, recipientConcurrency)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for start := 0; start < len(keys); start += recipientBatchKeys {
		batch := keys[start:min(start+recipientBatchKeys, len(keys))]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			items, err := r.batchGet(ctx, batch)
			if err != nil {
				fail(err)
				return
			}
			// Each item belongs to exactly one recipient, and each of the
			// recipient's fields to exactly one sort key, so decoding under
			// the lock only serializes the map lookups; it is cheap.
			mu.Lock()
			defer mu.Unlock()
			for _, item := range items {
				if err := decodeRecipientItem(out, byPK, convSKey, item, now); err != nil && firstErr == nil {
					firstErr = err
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("read recipients: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read recipients: %w", err)
	}
	return out, nil
}

// decodeRecipientItem decodes one item into the state of its recipient.
func decodeRecipientItem(out []RecipientState, byPK map[string]int, convSKey string, item map[string]types.AttributeValue, now time.Time) error {
	pk, sk := recipientString(item[attrPK]), recipientString(item[attrSK])
	i, ok := byPK[pk]
	if !ok {
		return nil
	}
	st := &out[i]
	switch {
	case sk == skProfile:
		bs, err := decodeBindings(item)
		if err != nil {
			return fmt.Errorf("profile of user %s: %w", st.UserID, err)
		}
		st.Bindings = nil
		for _, b := range bs {
			st.Bindings = append(st.Bindings, b)
		}
		sortBindings(st.Bindings)
		if st.Settings, err = DecodeSettings(item); err != nil {
			return fmt.Errorf("settings of user %s: %w", st.UserID, err)
		}
	case sk == skPresence:
		leases, err := DecodeLeases(item)
		if err != nil {
			return fmt.Errorf("presence of user %s: %w", st.UserID, err)
		}
		st.Leases = leases
	case sk == skCall:
		c, err := decodeCall(item, now)
		if err != nil {
			return fmt.Errorf("call of user %s: %w", st.UserID, err)
		}
		st.Call = c
	case convSKey != "" && sk == convSKey:
		cs, err := DecodeConversationSettings(item)
		if err != nil {
			return fmt.Errorf("conversation setting of user %s: %w", st.UserID, err)
		}
		st.Conversation = cs
	}
	return nil
}

// batchGet reads up to 100 keys, retrying the keys DynamoDB leaves
// unprocessed with jittered exponential backoff.
func (r *RecipientReader) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	wait := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := r.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{
				r.table: {Keys: keys, ConsistentRead: aws.Bool(false)},
			},
		})
		if err != nil {
			return nil, msgError(err)
		}
		items = append(items, out.Responses[r.table]...)
		keys = out.UnprocessedKeys[r.table].Keys
		if len(keys) == 0 {
			return items, nil
		}
		if attempt >= recipientAttempts {
			return nil, fmt.Errorf("%d keys still unprocessed after %d rounds: %w", len(keys), attempt, push.ErrThrottled)
		}
		t := time.NewTimer(rand.N(wait) + 1)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

func recipientKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func recipientString(av types.AttributeValue) string {
	if s, ok := av.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
