// The tests' own certificate authority, made at run time: a peer's HTTPS listener serves a
// certificate it signed for 127.0.0.1 and trusts the client certificates it signs
// (tls_client_auth, RFC 8705 §2.1); self-signed client certificates (RFC 8705 §2.2) are
// made beside it.

package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TestCA is a certificate authority whose certificate and key live in memory and whose
// certificate is also written to CertFile.
type TestCA struct {
	CertFile string // the CA certificate, PEM: a server's trusted CA, the middleware's caFile

	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial int64
}

// NewTestCA makes a CA and writes its certificate and what it issues under dir.
func NewTestCA(dir string) (*TestCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	template := certTemplate(1, "Tokengate e2e CA")
	template.IsCA = true
	template.BasicConstraintsValid = true
	template.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &TestCA{CertFile: filepath.Join(dir, "ca.crt"), dir: dir, cert: cert, key: key, serial: 1}
	return ca, writePEM(ca.CertFile, "CERTIFICATE", der)
}

// ServerCert issues a certificate for 127.0.0.1, localhost and the other DNS names given
// and writes it and its key as name.crt and name.key.
func (ca *TestCA) ServerCert(name string, dnsNames ...string) (certFile, keyFile string, err error) {
	ca.serial++
	template := certTemplate(ca.serial, "127.0.0.1")
	template.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	template.DNSNames = append([]string{"localhost"}, dnsNames...)
	template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	certFile, keyFile, _, err = issue(ca.dir, name, template, ca.cert, ca.key)
	return certFile, keyFile, err
}

// Pool holds the CA's certificate alone: what a client of a server it signed trusts.
func (ca *TestCA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// ClientCert issues a client certificate whose subject is CN=commonName and writes it and
// its key as name.crt and name.key.
func (ca *TestCA) ClientCert(name, commonName string) (certFile, keyFile string, err error) {
	ca.serial++
	template := certTemplate(ca.serial, commonName)
	template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	certFile, keyFile, _, err = issue(ca.dir, name, template, ca.cert, ca.key)
	return certFile, keyFile, err
}

// SelfSignedCert makes a self-signed client certificate with subject CN=commonName, writes
// it and its key under dir as name.crt and name.key, and returns it too, for the client's
// registered jwks.
func SelfSignedCert(dir, name, commonName string) (certFile, keyFile string, cert *x509.Certificate, err error) {
	template := certTemplate(1, commonName)
	template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return issue(dir, name, template, nil, nil)
}

func certTemplate(serial int64, commonName string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
}

// issue makes a new key and a certificate of template for it, signed by parent's key, or
// self-signed when parent is nil, and writes both.
func issue(dir, name string, template, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certFile, keyFile string, cert *x509.Certificate, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		return "", "", nil, err
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		return "", "", nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return "", "", nil, err
	}
	return certFile, keyFile, cert, writePEM(keyFile, "PRIVATE KEY", keyDER)
}

func writePEM(path, blockType string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600)
}

// CertThumbprint is the x5t#S256 of the certificate in the PEM file certFile: base64url of
// the SHA-256 of its DER, the cnf member of the tokens bound to it (RFC 8705 §3.1).
func CertThumbprint(certFile string) (string, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	sum := sha256.Sum256(block.Bytes)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
