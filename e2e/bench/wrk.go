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

//go:embed token.lua
var tokenScript string

// load is one wrk run: its connections and threads, pinned to cpus ("" leaves it unpinned).
type load struct {
	url         string // Traefik's web entry point
	threads     int
	connections int
	cpus        string
	script      string // token.lua, written where wrk can read it
}

// measure is what wrk reports of a run.
type measure struct {
	requests int64
	rps      float64
	p50, p99 time.Duration
	failed   int64 // non-2xx answers and socket errors
}

// run sends requests for r's host for d: each with bearer token, or with a new token
// starting with token when r wants a new token per request; with the forged identity header
// when r spoofs.
func (l load) run(r row, token string, d time.Duration) (measure, error) {
	args := []string{
		"-t", strconv.Itoa(l.threads), "-c", strconv.Itoa(l.connections),
		"-d", strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s", "--latency", "-H", "Host: " + r.host,
	}
	if r.spoof {
		args = append(args, "-H", forged+": mallory")
	}
	if r.unique {
		args = append(args, "-s", l.script, l.url, "--", token)
	} else {
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

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s*([0-9.]+)`)
	wrkP50      = regexp.MustCompile(`(?m)^\s*50(?:\.000)?%\s+([0-9.]+[a-z]+)`)
	wrkP99      = regexp.MustCompile(`(?m)^\s*99(?:\.000)?%\s+([0-9.]+[a-z]+)`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
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
	return m, nil
}

// writeScript puts token.lua in dir for wrk.
func writeScript(dir string) (string, error) {
	path := dir + "/token.lua"
	return path, os.WriteFile(path, []byte(tokenScript), 0o644)
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
