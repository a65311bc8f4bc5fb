// Discovery, when issuer is set: the introspection endpoint and the keys of signed answers
// read from the authorization server's metadata (RFC 8414, OpenID Connect Discovery 1.0) on
// first use, never in New, and read again as they age or the server rotates its keys.

package introspection

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"
)

// How often the metadata is read, in the request path's monotonic nanoseconds. Variables
// for the tests.
var (
	// discoveryRefresh is how old the metadata may get before a call reads it again; the
	// other calls meanwhile use what was read before.
	discoveryRefresh = int64(5 * time.Minute)
	// discoveryRetry is how long calls fail at once after the metadata could not be read
	// and nothing was read before, or use the old metadata after a new read failed: a
	// flood of new tokens while the server is down is not a flood of metadata reads.
	discoveryRetry = int64(time.Second)
	// keysRefetchInterval spaces the reads of jwks_uri that a signed answer no key verifies
	// makes (the server rotated its keys), so a flood of answers naming unknown kids cannot
	// hammer the server.
	keysRefetchInterval = int64(10 * time.Second)
)

// discovery is what one issuer's metadata says, shared by every instance of its state.
type discovery struct {
	issuer   string
	urls     []string    // the metadata's URLs, in the order tried
	mtls     bool        // a client certificate is configured: prefer mtls_endpoint_aliases (RFC 8705 §5)
	wantKeys bool        // responseFormat jwt without responseKeysFile: the keys at jwks_uri
	signed   bool        // responseFormat jwt: the endpoint and keys need https beyond the loopback
	keys     []publicKey // responseKeysFile's, when not wantKeys
	client   *http.Client

	fetching sync.Mutex // one read of the server at a time

	mu         sync.Mutex
	current    *serverMetadata // nil until a read succeeds
	readAt     int64           // when current was read, or a read to replace it failed
	failure    error           // the last read's error while there is no current
	failedAt   int64
	reads      int   // the reads ended so far: a call that waited for one uses its outcome
	keysReadAt int64 // the last read of jwks_uri an unverified answer made
	failing    bool  // the last read failed, and current is older: logged once
}

// serverMetadata is what a call uses of the metadata.
type serverMetadata struct {
	endpoint string
	jwksURI  string
	keys     []publicKey // responseKeysFile's, or with wantKeys those at jwksURI
}

// newDiscovery checks issuer (RFC 8414 §2: a URL without query or fragment) and where
// its metadata is.
func newDiscovery(config *Config) (*discovery, error) {
	u := httpURL(config.Issuer)
	switch {
	case u == nil:
		return nil, fmt.Errorf("issuer %q is not an http or https URL", shownURL(config.Issuer))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(config.Issuer, "?#"):
		return nil, fmt.Errorf("issuer %q has credentials, a query or a fragment: an issuer identifier has none (RFC 8414 §2)", shownURL(config.Issuer))
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	return &discovery{
		issuer: config.Issuer,
		// RFC 8414 §3.1 puts the well-known segment before the issuer's path; OpenID
		// Connect Discovery §4 appends it, and most servers serve only that one.
		urls:     []string{origin + "/.well-known/oauth-authorization-server" + path, origin + path + "/.well-known/openid-configuration"},
		mtls:     config.TLSCertFile != "",
		wantKeys: config.ResponseFormat == formatJWT && config.ResponseKeysFile == "",
		signed:   config.ResponseFormat == formatJWT,
		// Reads before the first one are not spaced.
		keysReadAt: -keysRefetchInterval,
	}, nil
}

// get returns the metadata for a call at now: what was read, or a new read when there is
// none or it is older than discoveryRefresh. While one call reads it again, the others use
// the old one.
func (d *discovery) get(ctx context.Context, now int64, timeout time.Duration) (*serverMetadata, error) {
	server, reads, done, err := d.cached(now)
	if done {
		return server, err
	}
	if server == nil {
		d.fetching.Lock() // for at most the read in progress, which timeout bounds
	} else if !d.fetching.TryLock() {
		return server, nil
	}
	defer d.fetching.Unlock()
	// A read that ended while this call waited is its answer, whatever the clock says: a
	// queue of calls behind a slow failing read must not read one by one.
	d.mu.Lock()
	if d.reads != reads {
		current, failure := d.current, d.failure
		d.mu.Unlock()
		return current, failure
	}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	server, err = d.read(ctx)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	switch {
	case err == nil:
		if d.failing {
			log.Printf("issuer %s: its metadata is read again", shownURL(d.issuer))
		}
		// Apart: yaegi v0.16.1 panics on a multiple assignment of an untyped nil.
		d.current, d.readAt, d.failing = server, now, false
		d.failure = nil
	case d.current != nil:
		// The old metadata goes on serving; a read is tried again after discoveryRetry.
		if !d.failing {
			log.Printf("issuer %s: reading its metadata again failed, using what was read before: %v", shownURL(d.issuer), err)
		}
		d.failing = true
		d.readAt = now - discoveryRefresh + discoveryRetry
		return d.current, nil
	default:
		d.failure = err
		d.failedAt = now
		return nil, err
	}
	return server, nil
}

// cached is get's answer when it needs no read; when one is due, done is false, the
// metadata is the old one, if any, and reads counts the reads ended until then.
func (d *discovery) cached(now int64) (*serverMetadata, int, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.current != nil && now-d.readAt < discoveryRefresh:
		return d.current, d.reads, true, nil
	case d.current == nil && d.failure != nil && now-d.failedAt < discoveryRetry:
		return nil, d.reads, true, d.failure
	}
	return d.current, d.reads, false, nil
}

// rotated reads jwks_uri again for a signed answer that no key of server verified, unless
// such a read happened within keysRefetchInterval; it returns the metadata to verify the
// answer with again, or nil.
func (d *discovery) rotated(ctx context.Context, server *serverMetadata, now int64, timeout time.Duration) *serverMetadata {
	d.fetching.Lock()
	defer d.fetching.Unlock()
	d.mu.Lock()
	current := d.current
	due := now-d.keysReadAt >= keysRefetchInterval
	if current == server && due {
		d.keysReadAt = now
	}
	d.mu.Unlock()
	switch {
	case current != server:
		return current // read while this call waited
	case !due:
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	keys, err := d.readKeys(ctx, server.jwksURI)
	if err != nil {
		return nil
	}
	fresh := &serverMetadata{endpoint: server.endpoint, jwksURI: server.jwksURI, keys: keys}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.current == server {
		d.current = fresh
	}
	return fresh
}

// read reads the metadata, at the first of urls that answers it for this issuer, and the
// keys it points to.
func (d *discovery) read(ctx context.Context) (*serverMetadata, error) {
	var failures []string
	for _, u := range d.urls {
		metadata, err := d.document(ctx, u)
		if err == nil {
			return d.readDocument(ctx, metadata)
		}
		failures = append(failures, err.Error())
	}
	return nil, fmt.Errorf("reading the metadata of issuer %s: %s", shownURL(d.issuer), strings.Join(failures, "; "))
}

// document is the metadata at u, if it is a JSON object about this issuer.
func (d *discovery) document(ctx context.Context, u string) (map[string]interface{}, error) {
	data, err := d.fetch(ctx, u)
	if err != nil {
		return nil, err
	}
	metadata, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("GET %s: the answer is not a JSON object", shownURL(u))
	}
	// RFC 8414 §3.3: else another server could name itself for this one. A catch-all at
	// one URL may answer for another issuer while the other URL has the right document.
	if issuer, _ := metadata["issuer"].(string); issuer != d.issuer {
		return nil, fmt.Errorf("GET %s: it names issuer %q, which must be identical to issuer", shownURL(u), issuer)
	}
	return metadata, nil
}

// readDocument reads what a call uses of the issuer's metadata, and the keys it points to.
func (d *discovery) readDocument(ctx context.Context, metadata map[string]interface{}) (*serverMetadata, error) {
	server := &serverMetadata{}
	server.endpoint, _ = metadata["introspection_endpoint"].(string)
	if aliases, ok := metadata["mtls_endpoint_aliases"].(map[string]interface{}); ok && d.mtls {
		if alias, _ := aliases["introspection_endpoint"].(string); alias != "" {
			server.endpoint = alias
		}
	}
	if server.endpoint == "" {
		return nil, fmt.Errorf("the metadata of issuer %s has no introspection_endpoint", shownURL(d.issuer))
	}
	if err := d.checkURL("introspection_endpoint", server.endpoint); err != nil {
		return nil, err
	}
	if !d.wantKeys {
		server.keys = d.keys
		return server, nil
	}
	server.jwksURI, _ = metadata["jwks_uri"].(string)
	if server.jwksURI == "" {
		return nil, fmt.Errorf("the metadata of issuer %s has no jwks_uri: responseFormat %q checks signed answers with its keys (or set responseKeysFile)",
			shownURL(d.issuer), formatJWT)
	}
	if err := d.checkURL("jwks_uri", server.jwksURI); err != nil {
		return nil, err
	}
	var err error
	if server.keys, err = d.readKeys(ctx, server.jwksURI); err != nil {
		return nil, err
	}
	return server, nil
}

// checkURL holds a URL of the metadata to what New holds endpoint to and, beyond the
// loopback, to https when the issuer is https (the secret and the tokens would go out in
// clear on its word), for signed answers (their keys or endpoint could be swapped on the
// way) and for a client certificate.
func (d *discovery) checkURL(member, value string) error {
	u := httpURL(value)
	switch {
	case u == nil || u.User != nil:
		return fmt.Errorf("the metadata of issuer %s has %s %q, not an http or https URL", shownURL(d.issuer), member, shownURL(value))
	case !plainHTTP(u):
	case strings.HasPrefix(d.issuer, "https:"):
		return fmt.Errorf("the metadata of https issuer %s has %s %q on plain http", shownURL(d.issuer), member, shownURL(value))
	case d.signed:
		return fmt.Errorf("the metadata of issuer %s has %s %q on plain http: responseFormat %q needs https", shownURL(d.issuer), member, shownURL(value), formatJWT)
	case d.mtls:
		return fmt.Errorf("the metadata of issuer %s has %s %q on plain http: tlsCertFile needs https", shownURL(d.issuer), member, shownURL(value))
	}
	return nil
}

// readKeys reads the JWK Set at jwksURI, as responseKeysFile is read.
func (d *discovery) readKeys(ctx context.Context, jwksURI string) ([]publicKey, error) {
	data, err := d.fetch(ctx, jwksURI)
	if err != nil {
		return nil, fmt.Errorf("reading the keys of issuer %s: %w", shownURL(d.issuer), err)
	}
	keys, err := jwkSet(data)
	if err == nil && len(keys) == 0 {
		err = errors.New("holds no RSA, EC or Ed25519 public key for signatures")
	}
	if err != nil {
		return nil, fmt.Errorf("the keys of issuer %s at %s: %w", shownURL(d.issuer), shownURL(jwksURI), err)
	}
	return keys, nil
}

// fetch GETs a document of the server's: a 200 of at most maxResponseBytes, never through
// a redirect (the client follows none).
func (d *discovery) fetch(ctx context.Context, target string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", shownURL(target), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, redactURL(err, target)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("GET %s: %w", shownURL(target), err)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: status %d", shownURL(target), resp.StatusCode)
	case len(data) > maxResponseBytes:
		return nil, fmt.Errorf("GET %s: the answer is over %d bytes", shownURL(target), maxResponseBytes)
	}
	return data, nil
}
