// Command probe is the real-node tests' network and cgroup probe: one static binary, packed as a
// one-layer image by tests/support/node.py (hack/node/oci-image.py), so the node's tests need no
// image from a registry and no image build. Each subcommand prints one line a test can parse.
//
//	probe serve PORT          answer every HTTP GET with "probe <hostname>"
//	probe resolve NAME        the addresses NAME resolves to through the pod's resolv.conf
//	probe get URL             the status code and the first 200 bytes of the body (TLS unverified)
//	probe memlimit            the memory limit of the probe's own cgroup (v1 or v2)
//	probe sleep               wait until terminated
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe serve PORT | resolve NAME | get URL | memlimit | sleep")
	}
	arg := ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	switch os.Args[1] {
	case "serve":
		serve(arg)
	case "resolve":
		resolve(arg)
	case "get":
		get(arg)
	case "memlimit":
		memlimit()
	case "sleep":
		waitForSignal()
	default:
		fail("unknown subcommand " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "probe:", msg)
	os.Exit(2)
}

func serve(port string) {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "probe %s\n", host) })
	srv := &http.Server{Addr: ":" + port}
	go func() {
		waitForSignal()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fail(err.Error())
	}
}

func resolve(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		fail(err.Error())
	}
	fmt.Println("resolved", name, strings.Join(addrs, ","))
}

func get(url string) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // reachability, not identity
	}}
	resp, err := client.Get(url)
	if err != nil {
		fail(err.Error())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	fmt.Printf("status %d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
}

func memlimit() {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(p); err == nil {
			fmt.Println("memlimit", strings.TrimSpace(string(b)))
			return
		}
	}
	fail("no memory limit file in /sys/fs/cgroup")
}

func waitForSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
