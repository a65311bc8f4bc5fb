// The Redis client of the shared cache: RESP2 over net, for the few commands it sends
// (AUTH, SELECT, GET, SET). The plugin imports nothing but the standard library, and the
// common Redis libraries do not run under yaegi. Valkey speaks the same protocol.

package introspection

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// maxRedisValue bounds a bulk reply: what the shared cache stores is a sealed entry of at
// most maxEntryBytes as entrySize counts it, so anything much larger is not ours, and a
// reply's length is not a reason to allocate what it says.
const maxRedisValue = 4 * maxEntryBytes

// maxIdleRedis is how many open connections a client keeps between round trips. More may be
// open at once under a burst of misses (at most maxConcurrentIntrospections, the flight's
// bound); those are closed when they come back.
const maxIdleRedis = 8

// redisServer is where the shared cache is and how to log in: the parsed sharedCache URL
// and its files.
type redisServer struct {
	addr     string      // host:port
	tls      *tls.Config // rediss://; nil for redis://
	user     string      // the URL's; "" for the default user
	password string      // sharedCachePasswordFile's; "" for none
	db       int
	timeout  time.Duration // one round trip, or the connection's setup
}

// redisClient sends commands to one server over a small pool of connections.
type redisClient struct {
	server redisServer
	mu     sync.Mutex
	idle   []*redisConn
}

type redisConn struct {
	conn   net.Conn
	reader *bufio.Reader
}

// redisError is an error reply (RESP's "-"): the server is there and the connection usable.
type redisError string

func (e redisError) Error() string { return "redis: " + string(e) }

// errRedisProtocol is a reply that is not RESP2 as these commands are answered: the
// connection is closed, since the rest of its stream cannot be trusted.
var errRedisProtocol = errors.New("redis: a reply that is not RESP")

// do sends one command and returns its reply: a bulk string's bytes (nil, false for a nil
// bulk), or a simple string or an integer as its text. An error reply is a redisError.
func (c *redisClient) do(args ...string) ([]byte, bool, error) {
	return c.send(encode(args))
}

// encode spells a command as RESP's array of bulk strings.
func encode(args []string) []byte {
	size := 16
	for _, arg := range args {
		size += len(arg) + 16
	}
	command := make([]byte, 0, size)
	command = append(command, '*')
	command = strconv.AppendInt(command, int64(len(args)), 10)
	command = append(command, "\r\n"...)
	for _, arg := range args {
		command = append(command, '$')
		command = strconv.AppendInt(command, int64(len(arg)), 10)
		command = append(command, "\r\n"...)
		command = append(command, arg...)
		command = append(command, "\r\n"...)
	}
	return command
}

// send writes a command, already a RESP array of bulk strings, on a connection of the pool
// (or a new one) and reads its reply. The connection goes back to the pool unless its
// stream broke or enough are idle. One function, the pool's steps inline: under yaegi each
// call costs the request path.
func (c *redisClient) send(command []byte) ([]byte, bool, error) {
	var rc *redisConn
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		rc = c.idle[n-1]
		c.idle = c.idle[:n-1]
	}
	c.mu.Unlock()
	if rc == nil {
		var err error
		if rc, err = c.dial(); err != nil {
			return nil, false, err
		}
	}
	value, ok, err := rc.roundTrip(c.server.timeout, command)
	if _, isReply := err.(redisError); err != nil && !isReply {
		rc.conn.Close()
		return nil, false, err
	}
	c.mu.Lock()
	if len(c.idle) < maxIdleRedis {
		c.idle = append(c.idle, rc)
		rc = nil
	}
	c.mu.Unlock()
	if rc != nil {
		rc.conn.Close()
	}
	return value, ok, err
}

// closeIdle closes the idle connections: the state that owns the client is gone.
func (c *redisClient) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.idle {
		rc.conn.Close()
	}
	c.idle = nil
}

// dial opens a connection, with TLS for rediss://, and logs in and selects the database,
// each step within the timeout.
func (c *redisClient) dial() (*redisConn, error) {
	s := c.server
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	dialer := &net.Dialer{}
	conn, err := dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		tlsConn := tls.Client(conn, s.tls)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tlsConn
	}
	rc := &redisConn{conn: conn, reader: bufio.NewReader(conn)}
	var setup [][]string
	if s.password != "" && s.user != "" {
		setup = append(setup, []string{"AUTH", s.user, s.password})
	} else if s.password != "" {
		setup = append(setup, []string{"AUTH", s.password})
	}
	if s.db != 0 {
		setup = append(setup, []string{"SELECT", strconv.Itoa(s.db)})
	}
	for _, command := range setup {
		if _, _, err := rc.roundTrip(s.timeout, encode(command)); err != nil {
			conn.Close()
			// Never the command: AUTH's holds the password.
			return nil, fmt.Errorf("%s: %w", command[0], err)
		}
	}
	return rc, nil
}

// roundTrip writes one command and reads one reply.
func (rc *redisConn) roundTrip(timeout time.Duration, command []byte) ([]byte, bool, error) {
	if err := rc.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, false, err
	}
	if _, err := rc.conn.Write(command); err != nil {
		return nil, false, err
	}
	return rc.readReply()
}

// readReply reads a simple string, an error, an integer or a bulk string: what AUTH,
// SELECT, GET and SET answer, and the commands of the tests.
func (rc *redisConn) readReply() ([]byte, bool, error) {
	line, err := rc.reader.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			err = errRedisProtocol
		}
		return nil, false, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, false, errRedisProtocol
	}
	text := string(line[1 : len(line)-2])
	switch line[0] {
	case '+', ':':
		return []byte(text), true, nil
	case '-':
		return nil, false, redisError(text)
	case '$':
		n, err := strconv.Atoi(text)
		switch {
		case err != nil || n < -1 || n > maxRedisValue:
			return nil, false, errRedisProtocol
		case n == -1:
			return nil, false, nil
		}
		value := make([]byte, n+2)
		if _, err := io.ReadFull(rc.reader, value); err != nil {
			return nil, false, err
		}
		if value[n] != '\r' || value[n+1] != '\n' {
			return nil, false, errRedisProtocol
		}
		return value[:n], true, nil
	}
	return nil, false, errRedisProtocol
}
