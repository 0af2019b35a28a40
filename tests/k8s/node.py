"""Real Kubernetes nodes on this machine for the chart's tests: each a kubelet and a containerd
of its own (tests/k8s/build.sh, tests/k8s/node-parts.sh) with its own root, state, socket,
cgroup root, CNI bridge and pod subnet, and a node IP on an interface of their own (a bridge
without ports: no dummy module here), so two of them share one machine as two machines share
a network. One kube-proxy serves them both: they share
the host's network namespace, whose iptables one proxy programs.

Everything a node changes on the machine is recorded before and undone after (Machine):
sysctls kubelet sets, iptables chains and rules of kube-proxy and the CNI plugins, the
bridges and the dummy interface, mounts under the nodes' folders, cgroups, folders kubelet
makes outside its root, and every process (containerd's shims and the containers).
"""
import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port, stop_process

# The host's side of the nodes' network: node IPs, and an address for the services that
# stand outside the cluster (PostgreSQL, the fake LCO, the S3 server), reachable from pods.
INTERFACE = 'mytom-nodes'
HOST_ADDRESS = '10.250.0.254'
CLUSTER_CIDR = '10.244.0.0/16'
PAUSE_IMAGE = 'mytom.local/pause:1'
SYSCTLS = ('vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops')
# Folders kubelet makes whatever its --root-dir says.
KUBELET_FOLDERS = ('/var/lib/kubelet/device-plugins', '/var/lib/kubelet', '/var/log/containers')
CHAIN_PREFIXES = ('KUBE-', 'CNI-')


def sh(*args, check=True, **kwargs):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check, **kwargs)


class Machine:
    """What the nodes change outside their own folders, recorded then undone."""

    def __init__(self):
        self.sysctls = {name: Path('/proc/sys', name).read_text() for name in SYSCTLS}
        self.folders = [folder for folder in KUBELET_FOLDERS if not os.path.exists(folder)]
        self.rules = {tool: self._rules(tool) for tool in ('iptables', 'ip6tables')}
        sh('ip', 'link', 'del', INTERFACE, check=False)  # left by a run that was killed
        sh('ip', 'link', 'add', INTERFACE, 'type', 'bridge')  # no dummy module here
        sh('ip', 'link', 'set', INTERFACE, 'up')
        sh('ip', 'addr', 'add', f'{HOST_ADDRESS}/32', 'dev', INTERFACE)

    @staticmethod
    def _rules(tool):
        return set(sh(f'{tool}-save', check=False).stdout.splitlines())

    def restore(self):
        sh('ip', 'link', 'del', INTERFACE, check=False)
        for tool in ('iptables', 'ip6tables'):
            self._restore_rules(tool)
        for name, value in self.sysctls.items():
            Path('/proc/sys', name).write_text(value)
        for folder in self.folders:  # deepest first, as listed
            sh('rm', '-rf', folder, check=False)

    def leftovers(self, directory):
        """What the nodes left on the machine after they stopped: empty once all is put back."""
        found = [f'network interface {name}' for name in re.findall(r'^\d+: (mytom-[^:@]+)',
                                                                    sh('ip', '-o', 'link').stdout, re.M)]
        for tool in ('iptables', 'ip6tables'):
            rules = sh(f'{tool}-save', check=False).stdout.splitlines()
            found += [f'{tool} chain {line[1:].split()[0]}' for line in rules
                      if line.startswith(':') and line[1:].startswith(CHAIN_PREFIXES)]
        found += [f'mount {line.split()[4]}' for line in Path('/proc/self/mountinfo').read_text().splitlines()
                  if line.split()[4].startswith(str(directory))]
        found += [f'cgroup {path}' for path in Path('/sys/fs/cgroup').glob('*/mytom-node-*')]
        found += [f'sysctl {name} is {Path("/proc/sys", name).read_text().strip()}, was {value.strip()}'
                  for name, value in self.sysctls.items() if Path('/proc/sys', name).read_text() != value]
        found += [f'folder {folder}' for folder in self.folders if os.path.exists(folder)]
        for proc in Path('/proc').iterdir():
            try:
                if proc.name.isdigit() and str(directory).encode() in (proc / 'cmdline').read_bytes():
                    found.append(f'process {proc.name}')
            except OSError:
                continue
        return found

    def _restore_rules(self, tool):
        """Rules the nodes added that jump to their chains, then the chains: other rules (the
        Docker engine's, made meanwhile by other tests) stay."""
        table = None
        added, chains = [], []
        for line in sh(f'{tool}-save', check=False).stdout.splitlines():
            if line.startswith('*'):
                table = line[1:]
            elif line.startswith(':') and line[1:].startswith(CHAIN_PREFIXES):
                chains.append((table, line[1:].split()[0]))
            elif line.startswith('-A ') and line not in self.rules[tool]:
                chain = line.split()[1]
                if not chain.startswith(CHAIN_PREFIXES) and any(f' {p}' in line for p in CHAIN_PREFIXES):
                    added.append((table, line))
        for table, line in added:
            sh(tool, '-t', table, '-D', *shlex.split(line[3:]), check=False)
        for table, chain in chains:
            sh(tool, '-t', table, '-F', chain, check=False)
        for table, chain in chains:
            sh(tool, '-t', table, '-X', chain, check=False)


class Node:
    def __init__(self, cluster, parts, name, index):
        self.cluster = cluster
        self.parts = Path(parts)
        self.name = name
        self.index = index
        self.ip = f'10.250.0.{index + 1}'
        self.subnet = f'10.244.{index}.0/24'
        self.bridge = f'mytom-cni{index}'
        self.cgroup = f'mytom-{name}'
        self.dir = cluster.dir / name
        self.socket = self.dir / 'containerd.sock'
        self.processes = {}
        self.env = {**os.environ, 'PATH': f'{self.parts}/root/usr/bin:{self.parts}/root/usr/sbin:{os.environ["PATH"]}'}

    # --- commands ---------------------------------------------------------------------------
    def ctr(self, *args, check=True, timeout=300, stdin=None):
        return subprocess.run([str(self.parts / 'root/usr/bin/ctr'), '--address', str(self.socket),
                               '--namespace', 'k8s.io', *args], capture_output=True, env=self.env,
                              check=check, stdin=stdin, timeout=timeout)

    def import_image(self, archive):
        with open(archive, 'rb') as tarball:
            self.ctr('images', 'import', '-', stdin=tarball, timeout=600)

    # --- life cycle -------------------------------------------------------------------------
    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        sh('ip', 'addr', 'add', f'{self.ip}/32', 'dev', INTERFACE)
        self._cgroups('make')
        self._start_containerd()
        self.import_image(self.parts / 'pause.tar')
        self._start_kubelet()
        return self

    def kill(self):
        """The node dies: kubelet, containerd and every container of it, at once (SIGKILL)."""
        for name in ('kubelet', 'containerd'):
            process = self.processes.get(name)
            if process and process.poll() is None:
                process.kill()
                process.wait()
        for pid in self._own_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self):
        """kubelet stopped, then the node killed, and what it left behind removed."""
        self._stop('kubelet')
        self.kill()
        deadline = time.monotonic() + 10
        while self._own_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        for mount in reversed(self._mounts()):
            sh('umount', '-l', mount, check=False)
        sh('ip', 'link', 'del', self.bridge, check=False)
        self._cgroups('remove')

    def _stop(self, name):
        if name in self.processes:
            stop_process(self.processes[name], 20)

    def _own_pids(self):
        """containerd's shims and the containers they run: the processes whose cgroup is under
        this node's cgroup root, and the shims started from this node's containerd."""
        pids = set()
        for proc in Path('/proc').iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cgroups = (proc / 'cgroup').read_text()
                command = (proc / 'cmdline').read_bytes().decode(errors='replace')
            except OSError:
                continue
            if f'/{self.cgroup}/' in cgroups or (str(self.socket) in command and 'shim' in command):
                pids.add(int(proc.name))
        return pids

    def _mounts(self):
        mounts = []
        for line in Path('/proc/self/mountinfo').read_text().splitlines():
            point = line.split()[4].replace('\\040', ' ')
            if point.startswith(str(self.dir) + '/') or point == str(self.dir):
                mounts.append(point)
        return mounts

    def _cgroups(self, action):
        """The node's cgroup root in every v1 hierarchy (kubelet refuses a missing one); its
        pods' cgroups are under it, so that two kubelets never take each other's pods for
        orphans."""
        for hierarchy in Path('/sys/fs/cgroup').iterdir():
            if not hierarchy.is_dir() or hierarchy.is_symlink():
                continue
            path = hierarchy / self.cgroup
            # The v2 hierarchy beside them ("unified") is not one kubelet needs, but it and
            # containerd make folders there too: removed, not made.
            if action == 'make':
                if hierarchy.name == 'unified':
                    continue
                path.mkdir(exist_ok=True)
                if hierarchy.name.startswith('cpuset'):
                    for name in ('cpuset.cpus', 'cpuset.mems'):
                        (path / name).write_text((hierarchy / name).read_text())
            elif path.exists():
                # Deepest first: a cgroup folder goes once its children have (its files are not files).
                for directory in sorted((p for p in path.rglob('*') if p.is_dir()), key=lambda p: -len(p.parts)):
                    sh('rmdir', directory, check=False)
                sh('rmdir', path, check=False)

    def _spawn(self, name, *args):
        with open(self.dir / f'{name}.log', 'a') as log:
            process = subprocess.Popen([str(a) for a in args], stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                       cwd=self.dir)
        self.processes[name] = process
        self.cluster.node_processes.append((f'{self.name}/{name}', process, self.dir / f'{name}.log'))
        time.sleep(0.2)
        if process.poll() is not None:
            log = (self.dir / f'{name}.log').read_text()
            raise AssertionError(f'{self.name}: {name} exited at once:\n{log[-3000:]}')

    def _start_containerd(self):
        cni = self.dir / 'cni'
        cni.mkdir(exist_ok=True)
        (cni / '10-mytom.conflist').write_text(json.dumps({
            'cniVersion': '1.0.0', 'name': f'mytom-{self.name}',
            'plugins': [
                {'type': 'bridge', 'bridge': self.bridge, 'isGateway': True, 'ipMasq': True, 'hairpinMode': True,
                 'ipam': {'type': 'host-local', 'ranges': [[{'subnet': self.subnet}]],
                          'routes': [{'dst': '0.0.0.0/0'}], 'dataDir': str(self.dir / 'ipam')}},
                {'type': 'portmap', 'capabilities': {'portMappings': True}},
                # The Docker engine sets FORWARD's policy to DROP: this lets the pods' traffic by.
                {'type': 'firewall'},
            ]}))
        root = self.parts / 'root'
        config = self.dir / 'containerd.toml'
        config.write_text(f'''version = 2
root = "{self.dir}/containerd/root"
state = "{self.dir}/containerd/state"
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{self.dir}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Root here may not lower a process's OOM score: without this every sandbox fails.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{root}/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{root}/usr/sbin/runc"
        Root = "{self.dir}/runc"
        SystemdCgroup = false
''')
        self._spawn('containerd', root / 'usr/bin/containerd', '--config', config)
        deadline = time.monotonic() + 60
        while self.ctr('version', check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f'{self.name}: containerd did not answer:\n'
                                     f'{(self.dir / "containerd.log").read_text()[-3000:]}')
            time.sleep(0.3)

    def _start_kubelet(self):
        pki = self.cluster.dir / 'pki'
        config = self.dir / 'kubelet.yaml'
        config.write_text(json.dumps({
            'apiVersion': 'kubelet.config.k8s.io/v1beta1', 'kind': 'KubeletConfiguration',
            # These machines have cgroup v1, which kubelet 1.37 runs only when told to.
            'failCgroupV1': False, 'cgroupDriver': 'cgroupfs', 'cgroupRoot': f'/{self.cgroup}',
            'address': self.ip, 'port': 10250, 'readOnlyPort': 0, 'healthzBindAddress': self.ip, 'healthzPort': 10248,
            'authentication': {'x509': {'clientCAFile': str(pki / 'ca.crt')}, 'anonymous': {'enabled': False},
                               'webhook': {'enabled': False}},
            'authorization': {'mode': 'AlwaysAllow'},
            'containerRuntimeEndpoint': f'unix://{self.socket}',
            'podLogsDir': str(self.dir / 'pod-logs'),
            'failSwapOn': False,
            # A test machine's disk and memory are shared with the rest of the suite: evict
            # only when truly out, and never collect the images the tests imported.
            'evictionHard': {'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%',
                             'nodefs.inodesFree': '1%'},
            'imageGCHighThresholdPercent': 100, 'imageGCLowThresholdPercent': 99,
            'serializeImagePulls': False,
            'resolvConf': '/etc/resolv.conf',
            'nodeStatusUpdateFrequency': '5s',
        }))
        self._spawn('kubelet', self.cluster.bin / 'kubelet', f'--config={config}',
                    f'--kubeconfig={self.cluster.kubeconfig}', f'--hostname-override={self.name}',
                    f'--node-ip={self.ip}', f'--root-dir={self.dir / "kubelet"}', f'--cert-dir={self.dir / "pki"}')


def start_kube_proxy(cluster):
    config = cluster.dir / 'kube-proxy.yaml'
    config.write_text(json.dumps({
        'apiVersion': 'kubeproxy.config.k8s.io/v1alpha1', 'kind': 'KubeProxyConfiguration',
        'mode': 'iptables', 'clusterCIDR': CLUSTER_CIDR,
        'clientConnection': {'kubeconfig': str(cluster.kubeconfig)},
        'metricsBindAddress': f'127.0.0.1:{free_port()}', 'healthzBindAddress': f'127.0.0.1:{free_port()}',
        # Leave the machine's conntrack table size and timeouts as they are.
        'conntrack': {'maxPerCore': 0, 'min': 0, 'tcpEstablishedTimeout': '0s', 'tcpCloseWaitTimeout': '0s'},
    }))
    cluster.spawn('kube-proxy', f'--config={config}', '--hostname-override=node-a')
    # Stopped with the nodes, before their iptables chains are removed: it would remake them.
    name, process = cluster.processes.pop()
    cluster.node_processes.append((name, process, cluster.dir / f'{name}.log'))
