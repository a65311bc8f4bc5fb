package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// pinning keeps the load generator and Traefik on separate CPUs where there are two or more:
// Traefik gets the upper half, wrk and the servers it talks to (this process: backend,
// endpoint, ForwardAuth adapter) the lower half.
type pinning struct {
	load, traefik string // taskset CPU lists; "" when not pinned
	loadThreads   int
	describe      string
}

func pinCPUs() (pinning, error) {
	cpus, err := allowedCPUs()
	if err != nil {
		return pinning{}, err
	}
	if len(cpus) < 2 {
		return pinning{loadThreads: 1, describe: "none (1 CPU): wrk, Traefik and the servers share it"}, nil
	}
	half := len(cpus) / 2
	p := pinning{load: joinInts(cpus[:half]), traefik: joinInts(cpus[half:]), loadThreads: half}
	// -a: every thread of this process, and the threads it starts later inherit it.
	if out, err := exec.Command("taskset", "-a", "-p", "-c", p.load, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		return pinning{}, fmt.Errorf("taskset: %v: %s", err, out)
	}
	runtime.GOMAXPROCS(half)
	p.describe = fmt.Sprintf("Traefik on CPU %s; wrk, backend, endpoint and ForwardAuth adapter on CPU %s", p.traefik, p.load)
	return p, nil
}

// allowedCPUs reads the CPUs this process may run on, such as "0-3,6".
func allowedCPUs() ([]int, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	var cpus []int
	for _, line := range strings.Split(string(status), "\n") {
		list, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		for _, part := range strings.Split(strings.TrimSpace(list), ",") {
			first, last, isRange := strings.Cut(part, "-")
			from, err := strconv.Atoi(first)
			if err != nil {
				return nil, fmt.Errorf("parsing Cpus_allowed_list %q: %w", list, err)
			}
			to := from
			if isRange {
				if to, err = strconv.Atoi(last); err != nil {
					return nil, fmt.Errorf("parsing Cpus_allowed_list %q: %w", list, err)
				}
			}
			for cpu := from; cpu <= to; cpu++ {
				cpus = append(cpus, cpu)
			}
		}
	}
	return cpus, nil
}

func joinInts(list []int) string {
	s := make([]string, len(list))
	for i, n := range list {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// sample is one row's run in one round.
type sample struct {
	measure
	calls   int           // introspection calls the endpoint answered
	cpuTime time.Duration // Traefik's CPU time
}

type table struct {
	samples [][]sample // [row][round]
}

// measureRows runs every row once per round, in the same order each round, after one
// unmeasured warm-up run of each. A DPoP row's proofs are made just before each of its runs.
func measureRows(o options, l load, as *harness.AuthServer, key *dpopKey, pid int) (table, error) {
	t := table{samples: make([][]sample, len(rows))}
	last := make([]measure, len(rows)) // each row's latest run, warm-up included
	nonce := time.Now().UnixNano()
	for round := -1; round < o.rounds; round++ {
		for i, r := range rows {
			token := fmt.Sprintf("bench-%d-%d", nonce, i)
			if r.unique {
				token = fmt.Sprintf("%s-round%d", token, round)
			}
			d := o.duration
			if round < 0 {
				d = time.Second
			}
			if r.dpop {
				if err := writeRunProofs(l, key, r, token, d, math.Max(last[rowIndex(cachedRow)].rps, last[i].rps)); err != nil {
					return table{}, err
				}
			}
			calls, cpu := settledCalls(as), cpuTime(pid)
			m, err := l.run(r, token, d)
			if err != nil {
				return table{}, err
			}
			if m.failed > 0 {
				why := ""
				if m.unproved > 0 {
					why = fmt.Sprintf(", %d of them sent without a DPoP proof: the run needed more than were made", m.unproved)
				}
				return table{}, fmt.Errorf("%s: %d of %d requests failed or were refused%s", r.name, m.failed, m.requests, why)
			}
			last[i] = m
			if round >= 0 {
				t.samples[i] = append(t.samples[i], sample{m, settledCalls(as) - calls, cpuTime(pid) - cpu})
			}
		}
		if round >= 0 {
			fmt.Fprintf(os.Stderr, "round %d of %d done\n", round+1, o.rounds)
		}
	}
	return t, nil
}

// writeRunProofs writes the proofs of one run of the DPoP row r, with token, for d: as many
// as requests at rate (requests per second) for d, times proofMargin. The caller gives the
// cached row's rate in this round, which bounds a DPoP row's (the same cached token, and a
// proof to check too), or the row's own last one if higher. The proofs are made now, each
// with its own jti, so they are fresh for the run if making them and the run together take
// less than dpopProofMaxAge.
func writeRunProofs(l load, key *dpopKey, r row, token string, d time.Duration, rate float64) error {
	seconds := float64(wrkSeconds(d))
	n := int(rate*seconds*proofMargin) + l.connections
	start := time.Now()
	if err := key.writeProofs(l.scripts.proofs, l.threads, n, htu(r), token); err != nil {
		return fmt.Errorf("%s: writing %d DPoP proofs: %v", r.name, n, err)
	}
	if oldest := time.Since(start) + time.Duration(seconds*float64(time.Second)); oldest >= dpopProofMaxAge {
		return fmt.Errorf("%s: the first of %d DPoP proofs would be %v old at the end of the run, over the row's dpopProofMaxAge %v: "+
			"use a shorter -duration", r.name, n, oldest.Round(time.Second), dpopProofMaxAge)
	}
	return nil
}

// ratio is the median over the rounds of row a's throughput over row b's in the same round.
func (t table) ratio(a, b int) float64 {
	ratios := make([]float64, len(t.samples[a]))
	for round := range ratios {
		ratios[round] = t.samples[a][round].rps / t.samples[b][round].rps
	}
	return median(ratios)
}

// each is the median over the rounds of f of row i's samples.
func (t table) each(i int, f func(sample) float64) float64 {
	values := make([]float64, len(t.samples[i]))
	for round, s := range t.samples[i] {
		values[round] = f(s)
	}
	return median(values)
}

func (t table) print() {
	fmt.Println("| row | requests/s | × baseline | p50 | p99 | Traefik CPU per request | introspection calls |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for i, r := range rows {
		var requests int64
		var calls int
		for _, s := range t.samples[i] {
			requests += s.requests
			calls += s.calls
		}
		fmt.Printf("| %s | %.0f | %.2f | %s | %s | %s | %d (%.2f per request) |\n", r.name,
			t.each(i, func(s sample) float64 { return s.rps }),
			t.ratio(i, rowIndex(baseline.host)),
			latency(t.each(i, func(s sample) float64 { return float64(s.p50) })),
			latency(t.each(i, func(s sample) float64 { return float64(s.p99) })),
			latency(t.each(i, func(s sample) float64 { return float64(s.cpuTime) / float64(s.requests) })),
			calls, float64(calls)/float64(requests))
	}
}

func latency(ns float64) string {
	return time.Duration(ns).Round(time.Microsecond / 10).String()
}

// flood is Traefik's resident memory before and after floods of random tokens that the
// endpoint says are inactive.
type flood struct {
	before            int64 // bytes
	after, afterTwice int64
	requests          [2]int64
	calls             [2]int
}

// measureFlood sends o.flood requests with new tokens to the route with the default
// cacheSize, whose answers carry 64 KiB of claims, reads Traefik's resident memory, then
// does it again.
func measureFlood(o options, l load, as *harness.AuthServer, pid int) (flood, error) {
	var f flood
	var err error
	if f.before, err = residentBytes(pid); err != nil {
		return f, err
	}
	nonce := time.Now().UnixNano()
	chunk := 0
	for half := 0; half < 2; half++ {
		calls := as.TotalCalls()
		d := 2 * time.Second
		for f.requests[half] < o.flood {
			m, err := l.run(floodRoute, fmt.Sprintf("flood-%d-%d", nonce, chunk), d)
			if err != nil {
				return f, err
			}
			chunk++
			f.requests[half] += m.requests
			// The next run is as long as the rest needs at this run's rate.
			left := float64(o.flood-f.requests[half]) / m.rps
			d = time.Duration(left*float64(time.Second)) + time.Second
		}
		f.calls[half] = settledCalls(as) - calls
		rss, err := residentBytes(pid)
		if err != nil {
			return f, err
		}
		if half == 0 {
			f.after = rss
		} else {
			f.afterTwice = rss
		}
	}
	return f, nil
}

const mib = 1 << 20

func (f flood) print() {
	fmt.Printf("Flood of random tokens (endpoint says active, with 64 KiB of claims each; default cacheSize 10000):\n"+
		"  Traefik's resident memory %.1f MiB before, %.1f MiB after %d requests (%d introspection calls), "+
		"%.1f MiB after %d more (%d calls)\n",
		float64(f.before)/mib, float64(f.after)/mib, f.requests[0], f.calls[0],
		float64(f.afterTwice)/mib, f.requests[1], f.calls[1])
}

func printTargets(t table, f flood) {
	fmt.Println("Targets (a miss is a finding to report, not a failure)")
	target := func(what string, got, want float64) {
		fmt.Printf("  %s  %s: %.2f (target ≥ %.2f)\n", verdict(got >= want), what, got, want)
	}
	for i, r := range rows {
		for _, g := range r.targets {
			target(g.what, t.ratio(i, rowIndex(g.against)), g.atLeast)
		}
	}
	growth, more := float64(f.after-f.before)/mib, float64(f.afterTwice-f.after)/mib
	fmt.Printf("  %s  flood: memory grows by %.1f MiB (target < %d MiB)\n", verdict(growth < floodGrowth), growth, floodGrowth)
	fmt.Printf("  %s  doubled flood: %.1f MiB more (target < %d MiB: the cache is full by then, so memory stays put)\n",
		verdict(more < floodSlack), more, floodSlack)
	fmt.Println("  The herd targets are the checks above.")
}

func verdict(met bool) string {
	if met {
		return "pass"
	}
	return "MISS"
}

// floodGrowth is how much the first flood may add to Traefik's memory; floodSlack is how much
// the second may add: the cache is already full, so what is left is the garbage collector's
// headroom.
const (
	floodGrowth = 64
	floodSlack  = 16
)

// cpuTime is the user and system CPU time process pid has used (/proc/pid/stat, in clock
// ticks of 1/100 s on Linux).
func cpuTime(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it are fixed.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// residentBytes is process pid's resident memory (VmRSS).
func residentBytes(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 10, 64)
			return n * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}

func cpuModel() string {
	info, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(info), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "unknown CPU"
}

func osRelease() string {
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(release))
}
