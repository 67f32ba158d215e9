package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"stompbox/internal/proto"
	"strings"
	"time"
)

// Cluster is "stompbox cluster status": it asks a running node
// (its admin stats, with an administrator's API token) how the cluster
// stands and prints it for a person.
func Cluster(ctx context.Context, args []string, defaultURL string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		return errors.New("usage: stompbox cluster status [-url http://127.0.0.1:8080] [-token TOKEN]")
	}
	fs := flag.NewFlagSet("stompbox cluster status", flag.ContinueOnError)
	fs.SetOutput(stdout)
	base := fs.String("url", defaultURL, "the node to ask")
	token := fs.String("token", getenv("STOMPBOX_TOKEN"), "an administrator's API token (env STOMPBOX_TOKEN; make one with POST /api/tokens on any node)")
	if err := fs.Parse(args[1:]); err != nil {
		return err // flag.ErrHelp after -h: main exits 0 for it
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*base, "/")+"/api/admin/stats", nil)
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+*token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("cluster status: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var st proto.AdminStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	return printClusterStatus(stdout, st.Cluster)
}

// printClusterStatus writes the cluster section of the admin stats.
func printClusterStatus(w io.Writer, c *proto.ClusterStatus) error {
	if c == nil {
		_, err := fmt.Fprintln(w, "single node: not part of a cluster")
		return err
	}
	fmt.Fprintf(w, "node      %s\n", c.Node)
	if len(c.Nodes) > 0 {
		fmt.Fprintf(w, "nodes     %s (%d routes from here)\n", strings.Join(c.Nodes, ", "), c.Routes)
	}
	fmt.Fprintf(w, "leader    %s\n", c.Leader)
	fmt.Fprintf(w, "replicas  %d\n", c.Replicas)
	fmt.Fprintf(w, "log       %d entries; this node's database has applied %d (%d behind)\n", c.LogEnd, c.Applied, c.Behind)
	if c.Failed > 0 {
		fmt.Fprintf(w, "failed    %d entries failed to apply here: see the node's log\n", c.Failed)
	}
	fmt.Fprintln(w, "copies of the log:")
	for _, p := range c.Peers {
		state := "current"
		switch {
		case p.Offline:
			state = "offline"
		case !p.Current:
			state = fmt.Sprintf("catching up, %d entries behind", p.LagOps)
		}
		if p.Name == c.Leader {
			state += ", leader"
		}
		_, err := fmt.Fprintf(w, "  %-24s %s\n", p.Name, state)
		if err != nil {
			return err
		}
	}
	return nil
}
