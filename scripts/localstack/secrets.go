package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// loadSecrets writes the configuration into Secrets Manager under prefix, as
// API.md §7 lays the secrets out: {prefix}/{app}/api holds the app's API
// secrets, {prefix}/{app}/vendors/{certName} a credential, tagged with its
// vendor. Existing secrets get the new value and tag, so restarting the
// local stack against a running emulator is harmless.
func loadSecrets(ctx context.Context, sm *secretsmanager.Client, prefix string, c *localConfig, creds []credential) error {
	apps := make([]string, 0, len(c.Apps))
	for app := range c.Apps {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	for _, app := range apps {
		value, err := json.Marshal(map[string][]string{"apiSecrets": c.Apps[app].APISecrets})
		if err != nil {
			return fmt.Errorf("encode API secrets of %s: %w", app, err)
		}
		if err := putSecret(ctx, sm, prefix+"/"+app+"/api", string(value), nil); err != nil {
			return err
		}
	}
	for _, cr := range creds {
		value, err := json.Marshal(cr.Fields)
		if err != nil {
			return fmt.Errorf("encode credential %s/%s: %w", cr.App, cr.CertName, err)
		}
		tags := []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(string(cr.Vendor))}}
		if err := putSecret(ctx, sm, prefix+"/"+cr.App+"/vendors/"+cr.CertName, string(value), tags); err != nil {
			return err
		}
	}
	return nil
}

// putSecret creates a secret or, when it exists, stores a new value and
// sets its tags.
func putSecret(ctx context.Context, sm *secretsmanager.Client, name, value string, tags []smtypes.Tag) error {
	_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(value), Tags: tags,
	})
	var exists *smtypes.ResourceExistsException
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &exists):
		return fmt.Errorf("create secret %s: %w", name, err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
	}); err != nil {
		return fmt.Errorf("update secret %s: %w", name, err)
	}
	if len(tags) > 0 {
		if _, err := sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(name), Tags: tags}); err != nil {
			return fmt.Errorf("tag secret %s: %w", name, err)
		}
	}
	return nil
}
