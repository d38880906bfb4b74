// Package etcdtest runs an embedded etcd member for tests: one process, a
// client URL on 127.0.0.1 with a free port, data in a directory of the
// caller's. Only tests import it, so the embedded server (tens of modules)
// never reaches the gateway's binary.
package etcdtest

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Member is a running single-member cluster.
type Member struct {
	etcd *embed.Etcd
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
	return &Member{etcd: e, Endpoint: "http://" + e.Clients[0].Addr().String()}, nil
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
