package fcmemu

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// ServiceAccount is a Google service-account key file, the JSON an operator
// downloads from the Google Cloud console and the Firebase Admin SDK reads.
// Only the fields a JWT-bearer token exchange needs are kept.
type ServiceAccount struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// JSON returns the key file as the SDK reads it.
func (a *ServiceAccount) JSON() []byte {
	b, err := json.Marshal(a)
	if err != nil {
		// A struct of strings always encodes.
		panic(fmt.Sprintf("encode service account: %v", err))
	}
	return b
}

// NewServiceAccount generates a service account of projectID with a fresh
// 2048-bit RSA key, whose token_uri is tokenURI (an emulator's TokenURI, so
// the SDK fetches its access tokens there). Keys are made at run time for
// tests and the local stack, so no private key is ever committed.
func NewServiceAccount(projectID, tokenURI string) (*ServiceAccount, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate service account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode service account key: %w", err)
	}
	id := make([]byte, 20)
	rand.Read(id) // never fails (crypto/rand, Go 1.24+)
	return &ServiceAccount{
		Type:         "service_account",
		ProjectID:    projectID,
		PrivateKeyID: hex.EncodeToString(id),
		PrivateKey:   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		ClientEmail:  "push@" + projectID + ".iam.gserviceaccount.com",
		TokenURI:     tokenURI,
	}, nil
}

// PublicKeyOf returns the RSA public key of a service account's PEM private
// key (PKCS#8, as Google issues them, or PKCS#1).
func PublicKeyOf(privateKeyPEM string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(privateKeyPEM))
	if block == nil {
		return nil, errors.New("service account private_key: no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return &k.PublicKey, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("service account private_key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("service account private_key: a %T, want RSA", k)
	}
	return &rk.PublicKey, nil
}
