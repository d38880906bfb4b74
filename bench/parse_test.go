package bench

import (
	"testing"
	"time"
)

// What TestWrk reads from wrk's output (Debian's wrk 4.1.0, --latency):
// the totals, the rate, p50 and p99, and the error counts.
func TestParseWrk(t *testing.T) {
	out := `Running 1s test @ http://127.0.0.1:18777/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.48ms    2.82ms  27.16ms   89.15%
    Req/Sec   630.90    163.50     0.86k    70.00%
  Latency Distribution
     50%  812.00us
     75%    4.28ms
     90%    6.52ms
     99%    1.02s
  1272 requests in 1.02s, 689.61KB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:   1246.78
Transfer/sec:    675.93KB
`
	got, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{requests: 1272, seconds: 1.02, rps: 1246.78, p50: 812 * time.Microsecond, p99: 1020 * time.Millisecond, non2xx: 17, socketErrors: 10}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("no error for output without results")
	}
}

func TestLuaScript(t *testing.T) {
	got := luaScript(`{"a":"]]"}`, "tok")
	want := `wrk.method = "POST"
wrk.body = [==[{"a":"]]"}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Authorization"] = "Bearer tok"
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
