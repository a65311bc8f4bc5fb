// How the middleware authenticates to the introspection endpoint (RFC 6749 §2.3, RFC 7523,
// RFC 8705) and the TLS and HTTP client it calls it with.

package introspection

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The client authentication methods (RFC 6749 §2.3, RFC 7591 §2).
const (
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
	authNone  = "none"
	// RFC 7523 §2.2: an assertion signed with the client secret (OpenID Connect Core §9),
	// which never leaves us, or with a private key.
	authSecretJWT     = "client_secret_jwt"
	authPrivateKeyJWT = "private_key_jwt"
	// RFC 8705 §2.1 and §2.2: a TLS client certificate instead of a secret, issued by a CA
	// the server trusts, or self-signed and registered with the server.
	authTLS           = "tls_client_auth"
	authSelfSignedTLS = "self_signed_tls_client_auth"
)

// authenticate sets up the client authentication of authMethod: the Authorization value
// it returns, or the form parameters it adds. One method per call, never two
// (lua-resty-openidc PR #561).
func (in *introspector) authenticate(config *Config, secret string, form url.Values) (string, error) {
	authorization := ""
	switch config.AuthMethod {
	case authBasic, authPost:
		if missing := missingCredentials(config.ClientID, secret); missing != "" {
			return "", fmt.Errorf("%s missing: authMethod %q needs clientId and clientSecret (or clientSecretFile); "+
				"an endpoint without client authentication takes authMethod %q", missing, config.AuthMethod, authNone)
		}
		if config.AuthMethod == authBasic {
			authorization = basicCredentials(config.ClientID, secret)
		} else {
			form.Set("client_id", config.ClientID)
			form.Set("client_secret", secret)
		}
	case authSecretJWT, authPrivateKeyJWT:
		if err := in.setSigner(config, secret); err != nil {
			return "", err
		}
		form.Set("client_assertion_type", assertionType) // the assertion itself is new on every call
	case authTLS, authSelfSignedTLS:
		// RFC 8705 §2: the certificate authenticates, client_id says which client it is for.
		if err := secretless(config, secret, true); err != nil {
			return "", err
		}
		if config.TLSCertFile == "" {
			return "", fmt.Errorf("tlsCertFile and tlsKeyFile are missing: authMethod %q presents that certificate", config.AuthMethod)
		}
		form.Set("client_id", config.ClientID)
		in.credentialKeys = "clientId, tlsCertFile and tlsKeyFile"
	case authNone:
		if err := secretless(config, secret, false); err != nil {
			return "", err
		}
		if config.ClientID != "" {
			form.Set("client_id", config.ClientID) // a public client names itself (RFC 6749 §3.2.1)
		}
	default:
		return "", fmt.Errorf("authMethod %q is not one of %s", config.AuthMethod, strings.Join(authMethods, ", "))
	}
	if config.PrivateKeyFile != "" && config.AuthMethod != authPrivateKeyJWT {
		return "", fmt.Errorf("privateKeyFile %q is only read with authMethod %q", config.PrivateKeyFile, authPrivateKeyJWT)
	}
	return authorization, nil
}

// authMethods are the values authMethod may take, as its error lists them.
var authMethods = []string{authBasic, authPost, authSecretJWT, authPrivateKeyJWT, authTLS, authSelfSignedTLS, authNone}

// setSigner reads what client_secret_jwt or private_key_jwt signs its assertions with, and
// for whom. The client is the assertion's subject (RFC 7521 §4.2 makes client_id unnecessary).
func (in *introspector) setSigner(config *Config, secret string) error {
	var err error
	if config.AuthMethod == authSecretJWT {
		if missing := missingCredentials(config.ClientID, secret); missing != "" {
			return fmt.Errorf("%s missing: authMethod %q signs with clientSecret (or clientSecretFile) as clientId", missing, authSecretJWT)
		}
		in.signer, err = newSecretSigner(secret, signingAlg(config), config.KeyID)
		in.credentialKeys = "clientId, clientSecret, signingAlg and assertionAudience"
	} else {
		if err := secretless(config, secret, true); err != nil {
			return err
		}
		if config.PrivateKeyFile == "" {
			return fmt.Errorf("privateKeyFile is missing: authMethod %q signs its assertions with it", authPrivateKeyJWT)
		}
		in.signer, err = newSigner(config.PrivateKeyFile, signingAlg(config), config.KeyID)
		in.credentialKeys = "clientId, privateKeyFile, keyId and assertionAudience"
	}
	// Unset, the audience is the issuer when there is one (draft-ietf-oauth-rfc7523bis:
	// the issuer identifier, which no other server can take for its own), or else the
	// endpoint; one of the two is set.
	in.assertionAudience = config.AssertionAudience
	if in.assertionAudience == "" {
		in.assertionAudience = config.Issuer + config.Endpoint
	}
	return err
}

// signingAlg is the configured signingAlg, or the default of the authMethod: HS256 for
// client_secret_jwt, RS256 for private_key_jwt.
func signingAlg(config *Config) string {
	switch {
	case config.SigningAlg != "":
		return config.SigningAlg
	case config.AuthMethod == authSecretJWT:
		return "HS256"
	}
	return "RS256"
}

// missingCredentials names what client authentication lacks, so a misspelled key shows.
func missingCredentials(clientID, secret string) string {
	switch {
	case clientID == "" && secret == "":
		return "clientId and clientSecret are"
	case clientID == "":
		return "clientId is"
	case secret == "":
		return "clientSecret is"
	}
	return ""
}

// secretless checks the configuration of an authMethod that sends no secret and, when
// needsID, names the client by clientId.
func secretless(config *Config, secret string, needsID bool) error {
	if secret != "" {
		return fmt.Errorf("authMethod %q sends no secret, yet clientSecret or clientSecretFile is set", config.AuthMethod)
	}
	if needsID && config.ClientID == "" {
		return fmt.Errorf("clientId is missing: authMethod %q names the client by it", config.AuthMethod)
	}
	return nil
}

// clientSecret returns the secret from clientSecret or clientSecretFile, never both.
func clientSecret(config *Config) (string, error) {
	if config.ClientSecretFile == "" {
		return config.ClientSecret, nil
	}
	if config.ClientSecret != "" {
		return "", fmt.Errorf("clientSecret and clientSecretFile %q are both set: keep one", config.ClientSecretFile)
	}
	return readSecretFile("clientSecretFile", config.ClientSecretFile)
}

// readSecretFile reads a secret from a file, without the line ending an editor or echo adds.
func readSecretFile(key, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", key, path, err)
	}
	secret := strings.TrimRight(string(data), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s %q is empty", key, path)
	}
	return secret, nil
}

// basicCredentials encodes client_secret_basic: RFC 6749 §2.3.1 form-urlencodes the id
// and the secret before HTTP Basic, which servers decode (a ':' in the id would split it).
func basicCredentials(clientID, clientSecret string) string {
	pair := url.QueryEscape(clientID) + ":" + url.QueryEscape(clientSecret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(pair))
}

// assertionType is RFC 7523 §2.2's client_assertion_type.
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid, in seconds: enough for one
// call, and short, since RFC 7523 §3 lets a server keep every jti until the exp it saw.
const assertionLifetime = 60

// assertion is a client assertion (RFC 7523 §3): the client is its iss and sub, the server
// its aud.
func (in *introspector) assertion(now int64) (string, error) {
	jti, err := randomID()
	if err != nil {
		return "", err
	}
	iat := now / int64(time.Second)
	return in.signer.sign(map[string]interface{}{
		"iss": in.clientID,
		"sub": in.clientID,
		"aud": in.assertionAudience,
		"jti": jti,
		"iat": iat,
		"exp": iat + assertionLifetime,
	})
}

// transportTLS is how the endpoint's connections use TLS: the CAs of caFile instead of the
// system's, and the client certificate of tlsCertFile (RFC 8705). The digest tells apart the
// clients of two different bundles or certificates.
func transportTLS(config *Config, https bool) (*tls.Config, string, error) {
	tlsConfig := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: !config.SSLVerify, // the sslVerify key, on by default
	}
	digest := ""
	if config.CAFile != "" {
		data, err := os.ReadFile(config.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("caFile %q: %w", config.CAFile, err)
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(data) {
			return nil, "", fmt.Errorf("caFile %q holds no PEM certificate", config.CAFile)
		}
		digest += hexDigest(data)
	}
	digest += "\x00"
	switch {
	case config.TLSCertFile == "" && config.TLSKeyFile == "":
	case config.TLSKeyFile == "":
		return nil, "", fmt.Errorf("tlsKeyFile is missing: tlsCertFile %q is set without it", config.TLSCertFile)
	case config.TLSCertFile == "":
		return nil, "", fmt.Errorf("tlsCertFile is missing: tlsKeyFile %q is set without it", config.TLSKeyFile)
	case !https:
		return nil, "", fmt.Errorf("tlsCertFile %q needs an https endpoint to be presented on", config.TLSCertFile)
	default:
		cert, err := tls.LoadX509KeyPair(config.TLSCertFile, config.TLSKeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("tlsCertFile %q and tlsKeyFile %q: %w", config.TLSCertFile, config.TLSKeyFile, err)
		}
		// Always presented: Go sends a certificate of Certificates only when it fits the CAs
		// the server's CertificateRequest names, so a self-signed one (RFC 8705 §2.2), or one
		// from a CA the server does not list, would silently not be sent.
		tlsConfig.GetClientCertificate = func(info *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
		digest += hexDigest(cert.Certificate[0])
	}
	return tlsConfig, digest, nil
}

// newHTTPClient builds the one client an endpoint gets: redirects are never followed,
// since Go re-sends a POST body (the token) on 307/308 (CVE-2023-45289, CVE-2024-45336).
func newHTTPClient(tlsConfig *tls.Config, maxCalls int) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = maxCalls // one host takes all the calls: each may keep its connection
	transport.TLSClientConfig = tlsConfig
	return &http.Client{
		Transport: transport,
		// Named parameters: yaegi v0.16.1 panics calling a func literal with unnamed ones.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
