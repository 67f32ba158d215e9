package cli

import (
	"bytes"
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
	if len(args) > 0 && args[0] == "remove" {
		return clusterRemove(ctx, args[1:], defaultURL, getenv, stdout)
	}
	if len(args) == 0 || args[0] != "status" {
		return errors.New("usage: stompbox cluster status|remove NODE [-url http://127.0.0.1:8080] [-token TOKEN]")
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

// clusterRemove is "stompbox cluster remove NODE": it asks a running node
// (POST /api/admin/cluster/remove) to take the named node, which will not
// come back, off the log's and the object stores' copies.
func clusterRemove(ctx context.Context, args []string, defaultURL string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stompbox cluster remove", flag.ContinueOnError)
	fs.SetOutput(stdout)
	base := fs.String("url", defaultURL, "a live node to ask")
	token := fs.String("token", getenv("STOMPBOX_TOKEN"), "an administrator's API token (env STOMPBOX_TOKEN)")
	var node string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		node, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if node == "" {
		node = fs.Arg(0)
	}
	if node == "" {
		return errors.New("usage: stompbox cluster remove NODE [-url http://127.0.0.1:8080] [-token TOKEN]")
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"node": node})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*base, "/")+"/api/admin/cluster/remove", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("cluster remove: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+*token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cluster remove: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cluster remove: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var out struct {
		Removed []string `json:"removed"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("cluster remove: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s removed from %s; its copies move to the live nodes (see stompbox cluster status)\n", node, strings.Join(out.Removed, ", "))
	return err
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
	if c.Stopped != "" {
		fmt.Fprintf(w, "STOPPED   %s\n", c.Stopped)
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
