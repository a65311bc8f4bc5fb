package main

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The wrk scripts: token.lua for the rows with a new token per request, dpop.lua for the
// rows with a new DPoP proof per request.
var (
	//go:embed token.lua
	tokenScript string
	//go:embed dpop.lua
	dpopScript string
)

// load is one wrk run: its connections and threads, pinned to cpus ("" leaves it unpinned).
type load struct {
	url         string // Traefik's web entry point
	threads     int
	connections int
	cpus        string
	scripts     scripts
}

// scripts are where wrk reads its scripts and the DPoP rows' proofs.
type scripts struct {
	token, dpop string
	proofs      string // dpop.lua's PROOFS: thread t reads proofs-t, written anew before each DPoP run
}

// measure is what wrk reports of a run.
type measure struct {
	requests int64
	rps      float64
	p50, p99 time.Duration
	failed   int64 // non-2xx answers and socket errors
	unproved int64 // DPoP rows: requests sent without a proof, none being left (dpop.lua)
}

// run sends requests for r's host for d: each with bearer token, or with a new token
// starting with token when r wants a new token per request, or with token under the DPoP
// scheme and the next of the proofs written for the run when r is a DPoP row; with the
// forged identity header when r spoofs.
func (l load) run(r row, token string, d time.Duration) (measure, error) {
	args := []string{
		"-t", strconv.Itoa(l.threads), "-c", strconv.Itoa(l.connections),
		"-d", strconv.Itoa(wrkSeconds(d)) + "s", "--latency", "-H", "Host: " + r.host,
	}
	if r.spoof {
		args = append(args, "-H", forged+": mallory")
	}
	switch {
	case r.dpop:
		args = append(args, "-H", "Authorization: DPoP "+token, "-s", l.scripts.dpop, l.url, "--", l.scripts.proofs)
	case r.unique:
		args = append(args, "-s", l.scripts.token, l.url, "--", token)
	case r.pool > 0:
		args = append(args, "-s", l.scripts.token, l.url, "--", token, strconv.Itoa(r.pool))
	default:
		args = append(args, "-H", "Authorization: Bearer "+token, l.url)
	}
	cmd := exec.Command("wrk", args...)
	if l.cpus != "" {
		cmd = exec.Command("taskset", append([]string{"-c", l.cpus, "wrk"}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return measure{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return parseWrk(string(out))
}

// wrkSeconds is how long wrk runs when asked for d: it takes whole seconds.
func wrkSeconds(d time.Duration) int {
	return int(d.Round(time.Second) / time.Second)
}

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s*([0-9.]+)`)
	wrkP50      = regexp.MustCompile(`(?m)^\s*50(?:\.000)?%\s+([0-9.]+[a-z]+)`)
	wrkP99      = regexp.MustCompile(`(?m)^\s*99(?:\.000)?%\s+([0-9.]+[a-z]+)`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkUnproved = regexp.MustCompile(`(?m)^Requests sent without a DPoP proof: (\d+)`) // dpop.lua's done()
)

// parseWrk reads wrk 4's report, printed with --latency.
func parseWrk(out string) (measure, error) {
	var m measure
	var err error
	find := func(re *regexp.Regexp) string {
		if match := re.FindStringSubmatch(out); match != nil {
			return match[1]
		}
		if err == nil {
			err = fmt.Errorf("wrk's report has no %s:\n%s", re, out)
		}
		return ""
	}
	m.requests, _ = strconv.ParseInt(find(wrkRequests), 10, 64)
	m.rps, _ = strconv.ParseFloat(find(wrkRPS), 64)
	m.p50, _ = time.ParseDuration(find(wrkP50))
	m.p99, _ = time.ParseDuration(find(wrkP99))
	if err != nil {
		return measure{}, err
	}
	if match := wrkNon2xx.FindStringSubmatch(out); match != nil {
		n, _ := strconv.ParseInt(match[1], 10, 64)
		m.failed += n
	}
	if match := wrkSocket.FindStringSubmatch(out); match != nil {
		for _, s := range match[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			m.failed += n
		}
	}
	if match := wrkUnproved.FindStringSubmatch(out); match != nil {
		m.unproved, _ = strconv.ParseInt(match[1], 10, 64)
	}
	return m, nil
}

// writeScripts puts the scripts in dir for wrk, and says where the proofs go.
func writeScripts(dir string) (scripts, error) {
	s := scripts{token: dir + "/token.lua", dpop: dir + "/dpop.lua", proofs: dir + "/proofs"}
	if err := os.WriteFile(s.token, []byte(tokenScript), 0o644); err != nil {
		return scripts{}, err
	}
	return s, os.WriteFile(s.dpop, []byte(dpopScript), 0o644)
}

// wrkVersion is what wrk says of its version: "wrk debian/4.1.0-3+b2 [epoll] Copyright ...".
func wrkVersion() string {
	out, _ := exec.Command("wrk", "--version").CombinedOutput()
	fields := strings.Fields(string(out))
	if len(fields) < 2 {
		return "wrk"
	}
	return fields[0] + " " + fields[1]
}
