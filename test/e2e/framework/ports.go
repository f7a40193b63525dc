//go:build e2e

package framework

import (
	"fmt"
	"net"
	"os"
)

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment ago. All listeners
// are held until every port is chosen, so one call never returns the same port twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// prepareDataPlane checks the test network, then gives a data plane process n free loopback ports
// and a folder of its own under the cluster's working folder.
func (c *Cluster) prepareDataPlane(name string, n int) (ports []int, dir string, err error) {
	if err := CheckTestNetwork(); err != nil {
		return nil, "", err
	}
	if ports, err = freePorts(n); err != nil {
		return nil, "", err
	}
	if dir, err = os.MkdirTemp(c.dir, name+"-"); err != nil {
		return nil, "", fmt.Errorf("creating %s's folder: %w", name, err)
	}
	return ports, dir, nil
}
