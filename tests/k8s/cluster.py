"""A real Kubernetes control plane on 127.0.0.1 for the chart's tests: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler as built by tests/k8s/build.sh, and either kwok,
which simulates a node and the lifecycle of the pods scheduled on it, or real nodes (kubelet,
containerd, CNI: tests/k8s/node.py) that run the image. Certificates come from openssl; every
component is stopped by the PID it started with.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port
from tests.k8s import node as real_node

HERE = Path(__file__).resolve().parent
NODE = 'kwok-node-0'
CONTROLLERS = ('cronjob,job,garbagecollector,serviceaccount-token,serviceaccount,namespace,'
               'deployment,replicaset,ttl-after-finished')
# Real nodes need Services' endpoints, nodes marked NotReady when their kubelet stops
# reporting, and the pods of a lost node evicted and collected.
NODE_CONTROLLERS = ',endpointslice,endpoint,nodelifecycle,taint-eviction-controller,podgc,root-ca-cert-publisher'


# A node that stops reporting is NotReady within 20 s (Kubernetes' default is 40 s): the tests
# wait less for what operators tune the same way.
NODE_TIMING = ('--node-monitor-grace-period=20s', '--node-monitor-period=2s')


class Cluster:
    def __init__(self, bin_dir, directory, node_parts=None, nodes=0):
        """nodes=0: one node simulated by kwok. Otherwise that many real nodes, run with
        the parts tests/k8s/node-parts.sh fetched."""
        self.bin = Path(bin_dir)
        self.dir = Path(directory)
        self.processes = []
        self.node_processes = []
        self.node_parts = node_parts
        self.node_count = nodes
        self.nodes = []
        self.machine = None
        self.kubeconfig = self.dir / 'kubeconfig'
        self.env = {**os.environ, 'KUBECONFIG': str(self.kubeconfig), 'HELM_CACHE_HOME': str(self.dir / 'helm'),
                    'HELM_CONFIG_HOME': str(self.dir / 'helm'), 'HELM_DATA_HOME': str(self.dir / 'helm')}

    # --- commands ---------------------------------------------------------------------------
    def run(self, tool, *args, check=True, input=None, timeout=300):
        result = subprocess.run([str(self.bin / tool), *args], env=self.env, capture_output=True, text=True,
                                input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f'{tool} {" ".join(args)} failed ({result.returncode}):\n'
                                 f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
        return result

    def kubectl(self, *args, **kwargs):
        return self.run('kubectl', *args, **kwargs)

    def helm(self, *args, **kwargs):
        return self.run('helm', *args, **kwargs)

    def get(self, *args):
        return json.loads(self.kubectl('get', *args, '-o', 'json').stdout)

    # --- life cycle -------------------------------------------------------------------------
    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self._certificates()
        etcd_client, etcd_peer, api = free_port(), free_port(), free_port()
        self._spawn('etcd', '--data-dir', str(self.dir / 'etcd'), '--name', 'tests',
                    '--listen-client-urls', f'http://127.0.0.1:{etcd_client}',
                    '--advertise-client-urls', f'http://127.0.0.1:{etcd_client}',
                    '--listen-peer-urls', f'http://127.0.0.1:{etcd_peer}',
                    '--initial-advertise-peer-urls', f'http://127.0.0.1:{etcd_peer}',
                    '--initial-cluster', f'tests=http://127.0.0.1:{etcd_peer}')
        pki = self.dir / 'pki'
        self._spawn('kube-apiserver', f'--etcd-servers=http://127.0.0.1:{etcd_client}',
                    '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', f'--secure-port={api}',
                    '--endpoint-reconciler-type=none', '--authorization-mode=AlwaysAllow',
                    f'--client-ca-file={pki / "ca.crt"}', f'--tls-cert-file={pki / "apiserver.crt"}',
                    f'--tls-private-key-file={pki / "apiserver.key"}',
                    f'--service-account-key-file={pki / "sa.pub"}',
                    f'--service-account-signing-key-file={pki / "sa.key"}',
                    '--service-account-issuer=https://kubernetes.default.svc',
                    '--service-cluster-ip-range=10.96.0.0/16',
                    # For `kubectl logs` and `exec`, which go through the node's kubelet, by its
                    # IP: no DNS knows the nodes' names.
                    f'--kubelet-client-certificate={pki / "admin.crt"}', f'--kubelet-client-key={pki / "admin.key"}',
                    '--kubelet-preferred-address-types=InternalIP')
        self._write_kubeconfig(api)
        self._wait('the API server to be ready', lambda: self.kubectl('get', '--raw', '/readyz', check=False)
                   .returncode == 0, 120)
        self._spawn('kube-controller-manager', f'--kubeconfig={self.kubeconfig}', '--leader-elect=false',
                    f'--controllers={CONTROLLERS}{NODE_CONTROLLERS if self.node_count else ""}',
                    f'--service-account-private-key-file={pki / "sa.key"}',
                    f'--root-ca-file={pki / "ca.crt"}', '--bind-address=127.0.0.1', f'--secure-port={free_port()}',
                    '--use-service-account-credentials=false', *NODE_TIMING)
        self._spawn('kube-scheduler', f'--kubeconfig={self.kubeconfig}', '--leader-elect=false',
                    '--bind-address=127.0.0.1', f'--secure-port={free_port()}')
        if self.node_count:
            self._start_nodes()
        else:
            self._start_kwok()
        return self

    def _start_nodes(self):
        if os.geteuid() != 0:
            raise AssertionError('real Kubernetes nodes need root (cgroups, network interfaces, iptables, mounts)')
        self.machine = real_node.Machine()
        for index in range(self.node_count):
            self.nodes.append(real_node.Node(self, self.node_parts, f'node-{"ab"[index]}', index).start())
        real_node.start_kube_proxy(self)
        for node in self.nodes:
            self._wait(f'{node.name} to be ready', lambda node=node: self.node_ready(node.name), 120)

    def import_image(self, archive):
        """An image archive (`docker save`) into every node's containerd: there is no registry."""
        for node in self.nodes:
            node.import_image(archive)

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()
        for _, process, _ in self.node_processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        if self.machine:
            self.machine.restore()
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()

    def leftovers(self):
        """What the real nodes left on the machine once stopped (nothing for kwok's)."""
        return self.machine.leftovers(self.dir) if self.machine else []

    def spawn(self, tool, *args):
        return self._spawn(tool, *args)

    def _spawn(self, tool, *args):
        with open(self.dir / f'{tool}.log', 'w') as log:  # the child keeps its own descriptor
            process = subprocess.Popen([str(self.bin / tool), *args], stdout=log, stderr=subprocess.STDOUT,
                                       env=self.env, cwd=self.dir)
        self.processes.append((tool, process))
        time.sleep(0.2)
        if process.poll() is not None:
            raise AssertionError(f'{tool} exited at once:\n{(self.dir / f"{tool}.log").read_text()[-3000:]}')

    def _wait(self, what, check, seconds):
        deadline = time.monotonic() + seconds
        while not check():
            if time.monotonic() > deadline:
                logs = '\n'.join(f'--- {name}\n' + (self.dir / f'{name}.log').read_text()[-1500:]
                                 for name, _ in self.processes)
                logs += '\n'.join(f'--- {name}\n' + log.read_text()[-1500:] for name, _, log in self.node_processes)
                raise AssertionError(f'timed out after {seconds} s waiting for {what}\n{logs}')
            time.sleep(0.5)

    def _start_kwok(self):
        stages = self.bin / 'kwok-stages'
        config = self.dir / 'kwok.yaml'
        # Nodes: initialize and keep alive. Pods: created, ready, completed when owned by a
        # Job (after the delay a pod's annotation asks for), deleted.
        parts = [stages / 'node' / 'fast' / 'node-initialize.yaml',
                 stages / 'node' / 'heartbeat' / 'node-heartbeat.yaml']
        parts += [stages / 'pod' / 'general' / f'{name}.yaml'
                  for name in ('pod-create', 'pod-ready', 'pod-complete', 'pod-delete')]
        config.write_text('\n---\n'.join(part.read_text() for part in parts))
        self._spawn('kwok', f'--kubeconfig={self.kubeconfig}', f'--config={config}',
                    '--manage-all-nodes=false', '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
                    '--node-ip=127.0.0.1', f'--server-address=127.0.0.1:{free_port()}')
        node = {
            'apiVersion': 'v1', 'kind': 'Node',
            'metadata': {'name': NODE, 'annotations': {'kwok.x-k8s.io/node': 'fake'},
                         'labels': {'kubernetes.io/hostname': NODE, 'type': 'kwok'}},
            'status': {'allocatable': {'cpu': '32', 'memory': '256Gi', 'pods': '110'},
                       'capacity': {'cpu': '32', 'memory': '256Gi', 'pods': '110'}},
        }
        self.kubectl('apply', '-f', '-', input=json.dumps(node))
        self._wait('the simulated node to be ready', self.node_ready, 60)
        # No node-lifecycle controller runs to lift the taint a new node starts with.
        self.kubectl('taint', 'nodes', NODE, 'node.kubernetes.io/not-ready:NoSchedule-', check=False)

    def node_ready(self, name=NODE):
        found = self.kubectl('get', 'node', name, '-o', 'json', check=False)
        if found.returncode != 0:
            return False
        node = json.loads(found.stdout)
        return any(c['type'] == 'Ready' and c['status'] == 'True' for c in node['status'].get('conditions', []))

    def _certificates(self):
        pki = self.dir / 'pki'
        pki.mkdir(exist_ok=True)

        def openssl(*args):
            subprocess.run(['openssl', *args], cwd=pki, check=True, capture_output=True)

        openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
                '-days', '2', '-subj', '/CN=tests-ca')
        (pki / 'apiserver.ext').write_text(
            'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,'
            'DNS:kubernetes.default.svc\n')
        for name, subject, extension in (('apiserver', '/CN=kube-apiserver', ['-extfile', 'apiserver.ext']),
                                         ('admin', '/O=system:masters/CN=admin', [])):
            openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f'{name}.key', '-out', f'{name}.csr',
                    '-subj', subject)
            openssl('x509', '-req', '-in', f'{name}.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
                    '-out', f'{name}.crt', '-days', '2', *extension)
        openssl('genrsa', '-out', 'sa.key', '2048')
        openssl('rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub')

    def _write_kubeconfig(self, port):
        pki = self.dir / 'pki'
        self.kubeconfig.write_text(json.dumps({
            'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'tests',
            'clusters': [{'name': 'tests', 'cluster': {'server': f'https://127.0.0.1:{port}',
                                                      'certificate-authority': str(pki / 'ca.crt')}}],
            'users': [{'name': 'admin', 'user': {'client-certificate': str(pki / 'admin.crt'),
                                                 'client-key': str(pki / 'admin.key')}}],
            'contexts': [{'name': 'tests', 'context': {'cluster': 'tests', 'user': 'admin'}}],
        }))
        self.kubeconfig.chmod(0o600)
