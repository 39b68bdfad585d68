package secrets

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/offline-push/offline-push/shared/push"
)

// VendorCredentials returns the value of the secret
// "{prefix}/{app}/vendors/{certName}", the JSON credentials of one vendor
// app (API.md §7), and its version id. Dispatch reads it to send; the
// version lets a provider keep one client per credential across warm
// invocations and rebuild it after a rotation. The answer is cached for
// HitTTL, so a rotation reaches every container within five minutes, and a
// missing secret for MissTTL. It returns push.ErrNotFound when there is no
// such secret, and a configuration error when its value is not a JSON
// object.
//
// The value is returned as stored and never appears in an error or a log.
func (s *Store) VendorCredentials(ctx context.Context, app, certName string) ([]byte, string, error) {
	if !push.ValidApp(app) || !validCertName(certName) {
		return nil, "", fmt.Errorf("credentials %q of app %q: %w", certName, app, push.ErrNotFound)
	}
	name := s.prefix + "/" + app + "/vendors/" + certName
	e, err := s.lookup(ctx, "value\x00"+name, func(ctx context.Context) *entry {
		return s.fetchCredentials(ctx, name)
	})
	if err != nil {
		return nil, "", err
	}
	// fetchCredentials keeps the value and the version in the entry's
	// secrets, the one list a cache entry holds.
	return []byte(e.secrets[0]), e.secrets[1], nil
}

func (s *Store) fetchCredentials(ctx context.Context, name string) *entry {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return s.failed(name, err)
	}
	if out.SecretString == nil {
		return s.miss(fmt.Errorf("secret %s has no string value: %w", name, errConfig))
	}
	// The parse error is not quoted: it may contain part of a key.
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(*out.SecretString), &obj) != nil || obj == nil {
		return s.miss(fmt.Errorf("secret %s is not a JSON object: %w", name, errConfig))
	}
	version := aws.ToString(out.VersionId)
	if version == "" {
		// Without a version id, the creation date still tells versions
		// apart well enough for a client cache key.
		if out.CreatedDate != nil {
			version = fmt.Sprint(out.CreatedDate.UnixNano())
		}
	}
	return &entry{secrets: []string{*out.SecretString, version}, expires: s.now().Add(HitTTL)}
}
