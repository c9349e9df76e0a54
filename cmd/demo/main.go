// Command demo registers the simulated gateways of `make run` with a
// running gatewayd and waits until every one is AUTHENTICATED. It finds or
// creates its own things by their own identity (the organization
// "gatewayd demo", its factory "Demo Plant", each gateway by gateway_id),
// so it is idempotent whatever else the database holds. It exits 1 unless
// every demo gateway authenticated in time, 2 on bad usage.
//
//	demo -api http://127.0.0.1:3000/api -token gwd_… -gateways FILE
//
// FILE has one "name url" line per gateway (what ctcsim prints).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// The demo's own names.
const (
	orgName     = "gatewayd demo"
	factoryName = "Demo Plant"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are demo's flags.
type options struct {
	api, token, gateways, email, password string
	timeout                               time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.api, "api", "http://127.0.0.1:3000/api", "gatewayd's API")
	fs.StringVar(&o.token, "token", os.Getenv("GATEWAYD_TOKEN"), "an admin token (default $GATEWAYD_TOKEN): it may create the organization")
	fs.StringVar(&o.gateways, "gateways", "", `file of "name url" lines, as ctcsim prints them`)
	fs.StringVar(&o.email, "email", "operator@example.com", "login e-mail of the simulated gateways")
	fs.StringVar(&o.password, "password", "demo-password", "login password of the simulated gateways")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Second, "how long the gateways may take to authenticate")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.gateways == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "demo: -gateways FILE is required (see demo -help)")
		return 2
	}
	sims, err := readGateways(o.gateways)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 2
	}
	c := &client{base: strings.TrimSuffix(o.api, "/"), token: o.token, http: &http.Client{Timeout: 10 * time.Second}}
	if err := demo(ctx, c, o, sims, stdout); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

type simGateway struct{ name, url string }

func readGateways(path string) ([]simGateway, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gateways file: %w", err)
	}
	defer f.Close()
	var out []simGateway
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("gateways file: want \"name url\", got %q", sc.Text())
		}
		out = append(out, simGateway{fields[0], fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("gateways file: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("gateways file lists no gateway")
	}
	return out, nil
}

func demo(ctx context.Context, c *client, o options, sims []simGateway, out io.Writer) error {
	org, err := c.findOrCreate(ctx, "/organizations", "", "name", orgName, map[string]any{"name": orgName})
	if err != nil {
		return fmt.Errorf("organization %q: %w", orgName, err)
	}
	factory, err := c.findOrCreate(ctx, "/factories", "organization_id="+org, "name", factoryName,
		map[string]any{"organization_id": org, "name": factoryName, "timezone": "Europe/Berlin"})
	if err != nil {
		return fmt.Errorf("factory %q: %w", factoryName, err)
	}
	ids := make([]string, len(sims))
	for i, g := range sims {
		creds := map[string]any{"url": g.url, "email": o.email, "password": o.password}
		existing, err := c.find(ctx, "/gateways", "", "gateway_id", g.name)
		if err != nil {
			return fmt.Errorf("gateway %s: %w", g.name, err)
		}
		switch {
		case existing != nil:
			// Already registered: set the credentials again, so they are
			// sealed with this .env's key even if it changed since, and
			// connect it. A PUT repeating the stored credentials keeps a
			// refusal (README), and a refusal from an earlier run, whose
			// simulator was told to refuse, would fail every later demo.
			id := existing["id"].(string)
			if err := c.call(ctx, "PUT", "/gateways/"+id, creds, 200, nil); err != nil {
				return fmt.Errorf("gateway %s: %w", g.name, err)
			}
			if err := c.call(ctx, "POST", "/gateways/"+id+"/connect", nil, 202, nil); err != nil {
				return fmt.Errorf("gateway %s: %w", g.name, err)
			}
			fmt.Fprintf(out, "demo: %s already registered; credentials refreshed\n", g.name)
			ids[i] = id
		default:
			body := map[string]any{"factory_id": factory, "gateway_id": g.name, "name": g.name}
			for k, v := range creds {
				body[k] = v
			}
			var created map[string]any
			if err := c.call(ctx, "POST", "/gateways", body, 201, &created); err != nil {
				return fmt.Errorf("gateway %s: %w", g.name, err)
			}
			fmt.Fprintf(out, "demo: registered %s at %s\n", g.name, g.url)
			ids[i] = created["id"].(string)
		}
	}
	statuses, err := waitAuthenticated(ctx, c, ids, o.timeout)
	show(ctx, c, out, statuses)
	return err
}

// waitAuthenticated polls every gateway's status until all are
// AUTHENTICATED or timeout passes.
func waitAuthenticated(ctx context.Context, c *client, ids []string, timeout time.Duration) ([]map[string]any, error) {
	deadline := time.Now().Add(timeout)
	statuses := make([]map[string]any, len(ids))
	for {
		done := 0
		for i, id := range ids {
			var st map[string]any
			if err := c.call(ctx, "GET", "/gateways/"+id+"/status", nil, 200, &st); err != nil {
				return statuses, err
			}
			statuses[i] = st
			if st["state"] == "AUTHENTICATED" {
				done++
			}
		}
		if done == len(ids) {
			return statuses, nil
		}
		if time.Now().After(deadline) {
			return statuses, fmt.Errorf("%d of %d demo gateways are not AUTHENTICATED after %s", len(ids)-done, len(ids), timeout)
		}
		select {
		case <-ctx.Done():
			return statuses, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// show prints each gateway's state and sensors.
func show(ctx context.Context, c *client, out io.Writer, statuses []map[string]any) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nGATEWAY\tSTATE\tSENSORS\tLAST ERROR")
	for _, st := range statuses {
		if st == nil {
			continue
		}
		sensors := "-"
		var list struct {
			Data []struct {
				Serial int64  `json:"serial"`
				Name   string `json:"name"`
			} `json:"data"`
		}
		// Discovery follows the login: give it a moment.
		for try := 0; st["state"] == "AUTHENTICATED" && try < 25; try++ {
			if c.call(ctx, "GET", "/gateways/"+st["id"].(string)+"/sensors", nil, 200, &list) != nil || len(list.Data) > 0 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		var names []string
		for _, s := range list.Data {
			names = append(names, fmt.Sprintf("%d %s", s.Serial, s.Name))
		}
		if len(names) > 0 {
			sensors = strings.Join(names, ", ")
		}
		lastErr := "-"
		if e, ok := st["last_error"].(string); ok {
			lastErr = e
		}
		fmt.Fprintf(tw, "%v\t%v\t%s\t%s\n", st["gateway_id"], st["state"], sensors, lastErr)
	}
	_ = tw.Flush()
}

// client calls gatewayd's API with a bearer token.
type client struct {
	base, token string
	http        *http.Client
}

// find pages through path?query for the item whose field equals value.
func (c *client) find(ctx context.Context, path, query, field, value string) (map[string]any, error) {
	for offset := 0; ; offset += 100 {
		q := url.Values{"limit": {"100"}, "offset": {fmt.Sprint(offset)}}
		extra, _ := url.ParseQuery(query)
		for k, v := range extra {
			q[k] = v
		}
		var page struct {
			Data       []map[string]any `json:"data"`
			Pagination struct {
				HasNext bool `json:"hasNext"`
			} `json:"pagination"`
		}
		if err := c.call(ctx, "GET", path+"?"+q.Encode(), nil, 200, &page); err != nil {
			return nil, err
		}
		for _, item := range page.Data {
			if item[field] == value {
				return item, nil
			}
		}
		if !page.Pagination.HasNext {
			return nil, nil
		}
	}
}

// findOrCreate returns the id of the item whose field is value, creating
// it with body when there is none.
func (c *client) findOrCreate(ctx context.Context, path, query, field, value string, body map[string]any) (string, error) {
	item, err := c.find(ctx, path, query, field, value)
	if err != nil {
		return "", err
	}
	if item == nil {
		if err := c.call(ctx, "POST", path, body, 201, &item); err != nil {
			return "", err
		}
	}
	return item["id"].(string), nil
}

func (c *client) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		// Numbers kept as text: other rows' metadata may hold what a
		// float64 cannot (1e400 is stored as written), and the demo must
		// work whatever else the database holds.
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		return d.Decode(out)
	}
	return nil
}
