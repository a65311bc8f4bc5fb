// logRejections: one line per refused request, so that an operator can tell why a client
// got its 400, 401 or 403 when the client is told no more than RFC 6750 §3 says.

package introspection

import (
	"fmt"
	"log"
	"sync"
	"time"
)

// rejectionLogLines bounds the lines per second of one middleware: a client that sends
// bad tokens as fast as it can must not fill the log.
const rejectionLogLines = 10

// rejectionLog counts one middleware's lines in the current second, and those dropped.
type rejectionLog struct {
	mu      sync.Mutex
	second  int64 // the monotonic second (now / 1e9) the lines are counted in
	lines   int
	dropped int
}

// rejectionLogs holds one log per middleware name: Traefik builds an instance per router
// and per reload, and the bound is the middleware's, whatever its routers.
var (
	rejectionLogsMu sync.Mutex
	rejectionLogs   = map[string]*rejectionLog{}
)

func rejectionLogFor(name string) *rejectionLog {
	rejectionLogsMu.Lock()
	defer rejectionLogsMu.Unlock()
	l := rejectionLogs[name]
	if l == nil {
		l = &rejectionLog{}
		rejectionLogs[name] = l
	}
	return l
}

// refused logs one refusal at now (the request path's monotonic clock) if this second has
// room; the first dropped line of a second schedules the line that counts them, at its end.
func (l *rejectionLog) refused(name string, rej *rejection, who string, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if second := now / int64(time.Second); second != l.second {
		l.second = second
		l.lines = 0
	}
	if l.lines < rejectionLogLines {
		l.lines++
		log.Printf("%s: refused %d: %s%s", name, rej.status, rej.reason, who)
		return
	}
	l.dropped++
	if l.dropped == 1 {
		time.AfterFunc(time.Duration(int64(time.Second)-now%int64(time.Second)), func() { l.flush(name) })
	}
}

// flush logs how many refusals were not logged.
func (l *rejectionLog) flush(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	log.Printf("%s: %d refusals not logged since the last line (over %d a second)", name, l.dropped, rejectionLogLines)
	l.dropped = 0
}

// who is what a refusal's line says of the answer: its sub and client_id, quoted, so that a
// value cannot forge a line, and cut at loggedClaimBytes, so that an answer cannot make
// ten lines a second of a megabyte each. Never the token. Made for every verdict, admitted
// ones too: confirm may still refuse the request.
func who(res *result) string {
	s := ""
	if sub, ok := res.claims["sub"]; ok {
		s += fmt.Sprintf(", sub %q", cut(sub))
	}
	if clientID, ok := res.claims["client_id"]; ok {
		s += fmt.Sprintf(", client_id %q", cut(clientID))
	}
	return s
}

const loggedClaimBytes = 256

func cut(value string) string {
	if len(value) > loggedClaimBytes {
		return value[:loggedClaimBytes] + "..."
	}
	return value
}
