// Package etcdtest runs an embedded etcd member for tests: one process, a
// client URL on 127.0.0.1 with a free port, data in a directory of the
// caller's. Only tests import it, so the embedded server (tens of modules)
// never reaches the gateway's binary.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Member is a running single-member cluster.
type Member struct {
	etcd *embed.Etcd
	cfg  *embed.Config
	// Endpoint is the client URL, http://127.0.0.1:<port>.
	Endpoint string
}

// Start starts a member with its data in dir and waits until it serves.
func Start(dir string) (*Member, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	local := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{local}, []url.URL{local}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{local}, []url.URL{local}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, errors.New("embedded etcd was not ready within 30s")
	}
	return &Member{etcd: e, cfg: cfg, Endpoint: "http://" + e.Clients[0].Addr().String()}, nil
}

// Stop stops a member that Start started, keeping its data and its
// ports' numbers for Restart.
func (m *Member) Stop() {
	client := url.URL{Scheme: "http", Host: m.etcd.Clients[0].Addr().String()}
	peer := url.URL{Scheme: "http", Host: m.etcd.Peers[0].Addr().String()}
	m.cfg.ListenClientUrls, m.cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	m.cfg.ListenPeerUrls = []url.URL{peer}
	m.etcd.Close()
}

// Restart starts a stopped member again on its data and its ports.
func (m *Member) Restart() error {
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		return fmt.Errorf("restart embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return errors.New("embedded etcd was not ready within 30s of its restart")
	}
	m.etcd = e
	return nil
}

// StartCluster starts n members in this process, with their data under
// dir, and waits until they all serve. Their ports are picked free first
// (a member must know its peers' URLs before it starts).
func StartCluster(dir string, n int) ([]*Member, error) {
	peers := make([]url.URL, n)
	var initial []string
	for i := range peers {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		peers[i] = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i].String()))
	}
	var (
		started []*embed.Etcd
		errs    = make(chan error, n)
	)
	stopAll := func() {
		for _, e := range started {
			e.Close()
		}
	}
	for i := range peers {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = fmt.Sprintf("%s/m%d", dir, i)
		client := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peers[i]}, []url.URL{peers[i]}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("start embedded etcd member %d: %w", i, err)
		}
		started = append(started, e)
	}
	members := make([]*Member, n)
	for i, e := range started {
		go func() {
			select {
			case <-e.Server.ReadyNotify():
				errs <- nil
			case <-time.After(30 * time.Second):
				errs <- errors.New("an embedded etcd member was not ready within 30s")
			}
		}()
		members[i] = &Member{etcd: e, Endpoint: "http://" + e.Clients[0].Addr().String()}
	}
	for range started {
		if err := <-errs; err != nil {
			stopAll()
			return nil, err
		}
	}
	return members, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Client connects to the member.
func (m *Member) Client() (*clientv3.Client, error) {
	return clientv3.New(m.ClientConfig())
}

// ClientConfig is a client configuration for the member, with quiet logs.
func (m *Member) ClientConfig() clientv3.Config {
	return clientv3.Config{Endpoints: []string{m.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
}

// Close stops the member.
func (m *Member) Close() { m.etcd.Close() }
