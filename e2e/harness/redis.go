// Debian's redis-server for the shared cache tier: started on a free 127.0.0.1 port with
// nothing written to disk, stopped and restarted on the same port (an outage and its end),
// and read and written by a small RESP client of our own, so that a test can look at what
// the replicas stored and alter it. The e2e module takes no Redis library.

package harness

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// RedisOptions says how to run redis-server beyond a free port and no persistence.
type RedisOptions struct {
	Password string // requirepass: every client must AUTH with it; "" for none
	// TLS serves TLS only (rediss://), with a certificate for 127.0.0.1 that TLS issues;
	// nil serves plain TCP.
	TLS *TestCA
}

// Redis is a running redis-server.
type Redis struct {
	Addr string // 127.0.0.1:port, the same across Restart

	bin  string
	args []string
	dir  string
	opts RedisOptions
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis runs redis-server (REDIS_SERVER_BIN, else the one on PATH) on a free
// 127.0.0.1 port, with its working directory and log in dir and no persistence, and
// returns once it answers PING. Stop it with Stop.
func StartRedis(dir string, opts RedisOptions) (*Redis, error) {
	bin := os.Getenv("REDIS_SERVER_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, errors.New("redis-server is not on PATH: `make test` installs Debian's redis-server package " +
				"(or set REDIS_SERVER_BIN)")
		}
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	r := &Redis{Addr: addr, bin: bin, dir: dir, opts: opts}
	// Nothing saved: no RDB snapshot, no append-only file, so a restart starts empty.
	r.args = []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", r.LogPath(), "--daemonize", "no"}
	if opts.Password != "" {
		r.args = append(r.args, "--requirepass", opts.Password)
	}
	if opts.TLS == nil {
		r.args = append(r.args, "--port", port)
	} else {
		certFile, keyFile, err := opts.TLS.ServerCert("redis")
		if err != nil {
			return nil, err
		}
		// TLS only, and no client certificate asked for: the middleware presents none.
		r.args = append(r.args, "--port", "0", "--tls-port", port, "--tls-cert-file", certFile,
			"--tls-key-file", keyFile, "--tls-ca-cert-file", opts.TLS.CertFile, "--tls-auth-clients", "no")
	}
	return r, r.start()
}

// start runs redis-server with r's arguments and waits until it answers PING.
func (r *Redis) start() error {
	r.cmd = exec.Command(r.bin, r.args...)
	r.cmd.Dir = r.dir
	// Pdeathsig: redis-server dies with us even when the test binary is killed by -timeout.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	err := WaitUntil(10*time.Second, 20*time.Millisecond, func() (bool, error) {
		select {
		case <-r.done:
			return false, errors.New("redis-server exited before it answered PING")
		default:
		}
		reply, err := r.do("PING")
		return err == nil && reply == "PONG", nil
	})
	if err != nil {
		r.Stop()
		return fmt.Errorf("%w\n%s", err, r.Logs())
	}
	return nil
}

// URL is what sharedCache takes: redis://127.0.0.1:port, rediss:// with TLS; never the
// password.
func (r *Redis) URL() string {
	if r.opts.TLS != nil {
		return "rediss://" + r.Addr
	}
	return "redis://" + r.Addr
}

// LogPath is where redis-server writes its log.
func (r *Redis) LogPath() string { return filepath.Join(r.dir, "redis.log") }

// Logs returns what redis-server has logged so far.
func (r *Redis) Logs() string {
	b, _ := os.ReadFile(r.LogPath())
	return string(b)
}

// Stop ends redis-server and waits for it: clients see their connections close and new
// ones refused.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// Restart starts redis-server again on the same port after Stop, empty.
func (r *Redis) Restart() error {
	r.Stop()
	return r.start()
}

// Keys lists every key, by SCAN.
func (r *Redis) Keys() ([]string, error) {
	var keys []string
	cursor := "0"
	for {
		reply, err := r.do("SCAN", cursor, "COUNT", "1000")
		if err != nil {
			return nil, err
		}
		page, ok := reply.([]interface{})
		if !ok || len(page) != 2 {
			return nil, fmt.Errorf("SCAN answered %v", reply)
		}
		next, _ := page[0].([]byte)
		batch, _ := page[1].([]interface{})
		for _, k := range batch {
			key, _ := k.([]byte)
			keys = append(keys, string(key))
		}
		if cursor = string(next); cursor == "0" {
			return keys, nil
		}
	}
}

// Get returns key's value; nil if there is no such key.
func (r *Redis) Get(key string) ([]byte, error) {
	reply, err := r.do("GET", key)
	if err != nil || reply == nil {
		return nil, err
	}
	value, ok := reply.([]byte)
	if !ok {
		return nil, fmt.Errorf("GET answered %v", reply)
	}
	return value, nil
}

// Set sets key to value, keeping the key's time to live.
func (r *Redis) Set(key string, value []byte) error {
	_, err := r.do("SET", key, string(value), "KEEPTTL")
	return err
}

// PTTL is key's time to live; -1 ms for a key without one, -2 ms for no such key.
func (r *Redis) PTTL(key string) (time.Duration, error) {
	reply, err := r.do("PTTL", key)
	if err != nil {
		return 0, err
	}
	ms, ok := reply.(int64)
	if !ok {
		return 0, fmt.Errorf("PTTL answered %v", reply)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// FlushAll removes every key.
func (r *Redis) FlushAll() error {
	_, err := r.do("FLUSHALL")
	return err
}

// do sends one command on a connection of its own, after AUTH when there is a password,
// and returns the reply: a string (status), []byte (bulk), int64, nil or []interface{}.
// An error reply is an error.
func (r *Redis) do(args ...string) (interface{}, error) {
	var conn net.Conn
	var err error
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	if r.opts.TLS != nil {
		conn, err = tls.DialWithDialer(dialer, "tcp", r.Addr, &tls.Config{RootCAs: r.opts.TLS.Pool()})
	} else {
		conn, err = dialer.Dial("tcp", r.Addr)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	in := bufio.NewReader(conn)
	if r.opts.Password != "" {
		if _, err := command(conn, in, "AUTH", r.opts.Password); err != nil {
			return nil, err
		}
	}
	return command(conn, in, args...)
}

// command writes args as a RESP array of bulk strings and reads the reply.
func command(w io.Writer, in *bufio.Reader, args ...string) (interface{}, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return nil, err
	}
	return readReply(in)
}

// readReply reads one RESP2 reply.
func readReply(in *bufio.Reader) (interface{}, error) {
	line, err := in.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("malformed reply line %q", line)
	}
	kind, rest := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		return rest, nil
	case '-':
		return nil, fmt.Errorf("redis: %s", rest)
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("malformed reply line %q", line)
	}
	switch kind {
	case ':':
		return n, nil
	case '$':
		if n < 0 {
			return nil, nil
		}
		value := make([]byte, n+2)
		if _, err := io.ReadFull(in, value); err != nil {
			return nil, err
		}
		return value[:n], nil
	case '*':
		if n < 0 {
			return nil, nil
		}
		items := make([]interface{}, n)
		for i := range items {
			if items[i], err = readReply(in); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("unknown reply type in %q", line)
}
