package introspection

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testRedis is a redis-server of the test's own (Debian's package, which make test
// installs), on a free port, keeping nothing on disk.
type testRedis struct {
	addr string
	args []string // "{port}" in them is the port
	tls  *tls.Config
	dir  string
	proc *os.Process
}

// startRedis starts redis-server with args beside the port and no persistence; the test's
// cleanup stops it.
func startRedis(t testing.TB, args ...string) *testRedis {
	t.Helper()
	r := newTestRedis(t, args)
	r.start(t)
	return r
}

// newTestRedis is a server on a free port, not started yet.
func newTestRedis(t testing.TB, args []string) *testRedis {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &testRedis{addr: addr, args: args, dir: t.TempDir()}
	t.Cleanup(r.stop)
	return r
}

// start runs the server on r.addr and waits until it answers.
func (r *testRedis) start(t testing.TB) {
	t.Helper()
	bin := lookPath("redis-server")
	if bin == "" {
		t.Fatal("redis-server is not installed: make test installs Debian's redis-server package")
	}
	_, port, _ := net.SplitHostPort(r.addr)
	args := []string{bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", r.dir}
	for _, arg := range r.args {
		args = append(args, strings.ReplaceAll(arg, "{port}", port))
	}
	// os.StartProcess, not os/exec: yaegi's standard library has no os/exec.
	var err error
	if r.proc, err = os.StartProcess(bin, args, &os.ProcAttr{Files: []*os.File{nil, nil, nil}}); err != nil {
		t.Fatal(err)
	}
	client := r.client("")
	for deadline := time.Now().Add(10 * time.Second); ; {
		// PING may be refused for want of AUTH: any reply says it is up.
		_, _, err := client.do("PING")
		if _, isReply := err.(redisError); err == nil || isReply {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer: %v", r.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	client.closeIdle()
}

// stop ends the server; start starts it again on the same port, empty.
func (r *testRedis) stop() {
	if r.proc != nil {
		r.proc.Kill()
		r.proc.Wait()
		r.proc = nil
	}
}

// lookPath finds a program on PATH, or "".
func lookPath(name string) string {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return path
		}
	}
	return ""
}

// client is a client of r logged in with password ("" for none).
func (r *testRedis) client(password string) *redisClient {
	return &redisClient{server: redisServer{addr: r.addr, password: password, tls: r.tls, timeout: 5 * time.Second}}
}

func isRedisError(err error) bool {
	_, ok := err.(redisError)
	return ok
}

// info reads one field of INFO's answer, such as connected_clients.
func info(t testing.TB, c *redisClient, field string) string {
	t.Helper()
	text, _, err := c.do("INFO")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(text), "\r\n") {
		if value, ok := strings.CutPrefix(line, field+":"); ok {
			return value
		}
	}
	t.Fatalf("INFO has no %s", field)
	return ""
}

func TestRedisCommands(t *testing.T) {
	c := startRedis(t).client("")
	var every []byte
	for i := 0; i < 256; i++ {
		every = append(every, byte(i)) // "\r\n" and NUL among them: bulk strings carry any byte
	}
	if _, _, err := c.do("SET", "k", string(every), "PX", "60000"); err != nil {
		t.Fatal(err)
	}
	value, found, err := c.do("GET", "k")
	if err != nil || !found || string(value) != string(every) {
		t.Fatalf("GET = %q, %v, %v; want the 256 bytes set", value, found, err)
	}
	ttl, _, _ := c.do("PTTL", "k")
	if ms, _ := strconv.Atoi(string(ttl)); ms <= 0 || ms > 60000 {
		t.Errorf("PTTL = %s, want within (0, 60000]: PX sets the expiry", ttl)
	}
	if value, found, err := c.do("GET", "missing"); err != nil || found || value != nil {
		t.Errorf("GET missing = %q, %v, %v; want not found", value, found, err)
	}
	// An error reply leaves the connection usable. A type assertion, not errors.As: under
	// yaegi v0.16.1 errors.As panics on an interpreted error type.
	if _, _, err := c.do("INCR", "k"); !isRedisError(err) {
		t.Errorf("INCR of bytes = %v, want an error reply", err)
	}
	for i := 0; i < 20; i++ {
		if _, found, err := c.do("GET", "k"); err != nil || !found {
			t.Fatalf("GET %d: %v, %v", i, found, err)
		}
	}
	if clients := info(t, c, "connected_clients"); clients != "1" {
		t.Errorf("connected_clients = %s after 23 commands in a row, want 1: one connection, reused", clients)
	}
}

func TestRedisLogin(t *testing.T) {
	r := startRedis(t, "--requirepass", "the-password", "--user", "tokengate", "on", ">user-password", "~*", "+@all")
	if _, _, err := r.client("the-password").do("SET", "k", "v"); err != nil {
		t.Fatalf("with the password: %v", err)
	}
	if _, _, err := r.client("").do("GET", "k"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("without a password: %v, want NOAUTH", err)
	}
	_, _, err := r.client("wrong-password").do("GET", "k")
	if err == nil || !strings.HasPrefix(err.Error(), "AUTH: ") || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("with a wrong password: %v, want an AUTH error that does not show it", err)
	}
	user := r.client("user-password")
	user.server.user = "tokengate"
	if _, found, err := user.do("GET", "k"); err != nil || !found {
		t.Errorf("as user tokengate: %v, %v", found, err)
	}
}

func TestRedisDatabase(t *testing.T) {
	r := startRedis(t)
	two := r.client("")
	two.server.db = 2
	if _, _, err := two.do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := two.do("GET", "k"); !found {
		t.Error("database 2 lost its key")
	}
	if _, found, _ := r.client("").do("GET", "k"); found {
		t.Error("database 0 holds the key set in database 2: SELECT was not sent")
	}
}

func TestRedisTLS(t *testing.T) {
	// httptest's certificate is for 127.0.0.1; redis-server reads it from files.
	server := httptest.NewTLSServer(nil)
	server.Close()
	cert := server.TLS.Certificates[0]
	certFile := writePEM(t, "redis.pem", "CERTIFICATE", cert.Certificate[0])
	keyFile := privateKeyFile(t, cert.PrivateKey, true)
	r := newTestRedis(t, []string{"--port", "0", "--tls-port", "{port}", "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no"})
	r.tls = &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"}
	r.tls.RootCAs.AddCert(server.Certificate())
	r.start(t)

	config := sharedCacheConfig(t, "rediss://"+r.addr)
	config.SharedCacheCAFile = certFile
	tier, _, err := readSharedCache(config)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tier.redis.do("SET", "k", "v"); err != nil {
		t.Errorf("rediss:// with sharedCacheCAFile: %v", err)
	}
	// Without the CA file, the system's CAs, which do not know this one.
	config.SharedCacheCAFile = ""
	untrusted, _, _ := readSharedCache(config)
	var unknown x509.UnknownAuthorityError
	if _, _, err := untrusted.redis.do("GET", "k"); !errors.As(err, &unknown) {
		t.Errorf("rediss:// without sharedCacheCAFile: %v, want the certificate refused", err)
	}
	// Plain RESP to a TLS port is not an answer.
	plain := &redisClient{server: redisServer{addr: r.addr, timeout: 200 * time.Millisecond}}
	if _, _, err := plain.do("GET", "k"); err == nil {
		t.Error("redis:// to a TLS port worked")
	}
}

// fakeRedis answers every connection with reply, once it has read a command, and counts
// the connections.
func fakeRedis(t *testing.T, reply string) (string, *int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var accepted int64
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			atomic.AddInt64(&accepted, 1)
			go func() {
				defer conn.Close()
				bufio.NewReader(conn).ReadString('\n')
				conn.Write([]byte(reply))
				// Held open until the client closes it: a client that keeps a broken stream
				// would hang the test's next command, not pass it.
				conn.Read(make([]byte, 1))
			}()
		}
	}()
	return l.Addr().String(), &accepted
}

func TestRedisHostileReplies(t *testing.T) {
	cases := []struct {
		desc  string
		reply string
	}{
		{"no reply", ""},
		{"not RESP", "hello\r\n"},
		{"no CR", "+OK\n"},
		{"a bulk larger than any entry", "$99999999\r\n"},
		{"a negative length", "$-2\r\n"},
		{"a bulk without its CRLF", "$2\r\nokxx"},
		{"an array", "*1\r\n$1\r\na\r\n"},
		{"a line longer than the buffer", "+" + strings.Repeat("a", 8192) + "\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			addr, accepted := fakeRedis(t, tc.reply)
			c := &redisClient{server: redisServer{addr: addr, timeout: 100 * time.Millisecond}}
			for i := 1; i <= 2; i++ {
				if _, found, err := c.do("GET", "k"); err == nil {
					t.Fatalf("GET %d = found %v, no error", i, found)
				}
			}
			// The broken stream is not reused: each command opened its own connection.
			if n := atomic.LoadInt64(accepted); n != 2 {
				t.Errorf("connections = %d, want 2", n)
			}
		})
	}
}
