package main

import (
	"testing"
	"time"
)

// A report of wrk 4.1.0 (Debian's package) with --latency, from a run against a server that
// answered 404, with a socket errors line as wrk prints it when there are some.
const wrkReport = `Running 1s test @ http://127.0.0.1:18777/nonexistent
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.96ms    1.05ms  15.19ms   95.48%
    Req/Sec     2.08k    47.24     2.13k    70.00%
  Latency Distribution
     50%    1.85ms
     75%    2.16ms
     90%    2.48ms
     99%    5.53ms
  2073 requests in 1.00s, 1.03MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 2073
Requests/sec:   2072.44
Transfer/sec:      1.03MB
`

func TestParseWrk(t *testing.T) {
	m, err := parseWrk(wrkReport)
	if err != nil {
		t.Fatal(err)
	}
	want := measure{requests: 2073, rps: 2072.44, p50: 1850 * time.Microsecond, p99: 5530 * time.Microsecond, failed: 2077}
	if m != want {
		t.Errorf("parseWrk = %+v, want %+v", m, want)
	}
	// dpop.lua's done() prints its line after wrk's report.
	m, err = parseWrk(wrkReport + "Requests sent without a DPoP proof: 12\n")
	if err != nil || m.unproved != 12 {
		t.Errorf("parseWrk with dpop.lua's line: unproved %d, err %v; want 12", m.unproved, err)
	}
	if _, err := parseWrk("wrk: connection refused\n"); err == nil {
		t.Error("a report without figures parsed without an error")
	}
}
