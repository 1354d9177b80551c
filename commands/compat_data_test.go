package commands

// The Docker compatibility table: every flag that Docker's documentation
// (docker/cli v29 docs/reference/commandline, and buildx's build for
// build) lists for these commands, and what tug does with it. The tests
// in compat_test.go hold tug to it, and docs/compat.md is rendered from
// it (go test ./commands -run TestCompatDoc -update).
//
// A row is "NAMES | STATUS | NOTE": Docker's flag names, then S
// (supported: parses and behaves as Docker's), D (differs: parses, and
// the note says how it differs), A (absent: fails with "unknown flag" and
// exit 125; the note says why) or P (in progress: being added now). A
// note "e2e: TestX" names the end-to-end test that shows the behaviour.

type compatCommand struct {
	cmd    string   // the command's words; "" for the global flags
	args   []string // arguments that complete a line for the parse tests
	absent string   // why tug lacks the whole command ("" when it has it)
	rows   string
	// extra are tug's own flags, which Docker lacks, by long name.
	extra map[string]string
}

const runRows = `
--add-host | S | e2e: TestNetworkDNSAndEtcFiles; host-gateway is the host.
--annotation | A | Containers carry no annotations yet.
-a, --attach | A | A foreground run attaches stdin (with -i), stdout and stderr; choosing streams is not implemented.
--blkio-weight | A | Block I/O limits are not implemented.
--blkio-weight-device | A | Block I/O limits are not implemented.
--cap-add | S | e2e: TestRunIsolation. Also takes a comma-separated list.
--cap-drop | S | e2e: TestRunIsolation. Also takes a comma-separated list.
--cgroup-parent | D | e2e: TestLimitsCgroupParent. A cgroupfs path (absolute from the root of the cgroup tree, or relative to the cgroup tug may write), never a systemd slice.
--cgroupns | A | Every container gets its own cgroup namespace.
--cidfile | S | e2e: TestRunCIDFile. Written once the container is made; an existing file is refused (125) and left alone; removed again if no container is made.
--cpu-count | A | Windows only.
--cpu-percent | A | Windows only.
--cpu-period | A | CPU limits are --cpus and --cpu-shares.
--cpu-quota | A | CPU limits are --cpus and --cpu-shares.
--cpu-rt-period | A | Real-time scheduling is not implemented.
--cpu-rt-runtime | A | Real-time scheduling is not implemented.
-c, --cpu-shares | S | e2e: TestLimitsV1Files. cgroup v2: cpu.weight, converted as runc and crun do.
--cpus | S | e2e: TestLimitsV1Files, TestStats.
--cpuset-cpus | A | CPU and memory-node pinning is not implemented.
--cpuset-mems | A | CPU and memory-node pinning is not implemented.
-d, --detach | S | e2e: TestRunDetached, TestRunDetachedInteractive (-dit). A per-container monitor process, no daemon.
--detach-keys | A | tug cannot attach to a running detached container, so there is nothing to detach from.
--device | A | Host devices are not passed into containers.
--device-cgroup-rule | A | Host devices are not passed into containers.
--device-read-bps | A | Block I/O limits are not implemented.
--device-read-iops | A | Block I/O limits are not implemented.
--device-write-bps | A | Block I/O limits are not implemented.
--device-write-iops | A | Block I/O limits are not implemented.
--dns | S | e2e: TestNetworkDNSAndEtcFiles.
--dns-option | A | Not implemented: /etc/resolv.conf gets servers and search domains only.
--dns-search | S | e2e: TestNetworkDNSAndEtcFiles.
--domainname | A | Not implemented.
--entrypoint | S | e2e: TestRunImageConfigOverrides.
-e, --env | S | e2e: TestRunImageConfigOverrides.
--env-file | S | e2e: TestRunImageConfigOverrides.
--expose | A | Not implemented; -P publishes the image's EXPOSEd ports.
--gpus | A | GPUs are not passed into containers.
--group-add | S | e2e: TestRunGroupAdd. Names from the image's /etc/group, or numbers; needs a subordinate id range rootless.
--health-cmd | A | No health checks: there is no daemon to run them.
--health-interval | A | No health checks: there is no daemon to run them.
--health-retries | A | No health checks: there is no daemon to run them.
--health-start-interval | A | No health checks: there is no daemon to run them.
--health-start-period | A | No health checks: there is no daemon to run them.
--health-timeout | A | No health checks: there is no daemon to run them.
--help | S |
-h, --hostname | S | e2e: TestRunBasics. (-h is --help in commands without a -h of their own.)
--init | S | e2e: TestInitReapsZombies.
-i, --interactive | S | e2e: TestRunTerminalAndStdio.
--io-maxbandwidth | A | Windows only.
--io-maxiops | A | Windows only.
--ip | A | No user-defined networks: a private network's container is 10.0.2.100.
--ip6 | A | No user-defined networks.
--ipc | A | Every container gets its own IPC namespace; sharing one is not implemented.
--isolation | D | e2e: TestIsolationInContainerPicksChroot, TestIsolationNested. Docker's is Windows only (on Linux it takes only default); tug's, as Buildah's, takes auto (the default, and what default means: the strongest that works here), rootless (namespaces) or chroot (root that can make no namespace, as in a container: the host's network, processes and IPC). --debug says which auto chose.
--label | D | e2e: TestRunLabels. Over the image's labels, shown by inspect (.Config.Labels) and ps (--filter label=, .Labels, .Label); -l is the global --log-level here, so the long form only.
--label-file | S | e2e: TestRunLabels. KEY=VALUE lines; --label wins over it.
--link | A | Legacy container links are not implemented.
--link-local-ip | A | No user-defined networks.
--log-driver | A | One log format: tug's own, read by tug logs.
--log-opt | A | One log format: tug's own, read by tug logs.
--mac-address | A | No user-defined networks.
-m, --memory | S | e2e: TestLimitsV1Files, TestLimitsOOMKilled.
--memory-reservation | A | Not implemented; --memory sets the hard limit.
--memory-swap | S | e2e: TestLimitsV1Files.
--memory-swappiness | A | Not implemented.
--mount | S | e2e: TestRunMounts. type=bind, volume and tmpfs.
--name | S | e2e: TestRunName.
--network | D | e2e: TestNetworkNoneAndHost, TestNetworkPublish. Modes are private (the default, user-mode networking inside tug, in place of bridge), host, none, pasta and slirp4netns; there are no user-defined networks and no container:NAME.
--network-alias | A | No user-defined networks.
--no-healthcheck | A | No health checks: there is no daemon to run them.
--oom-kill-disable | A | Not implemented.
--oom-score-adj | A | Not implemented.
--pid | A | Every container gets its own PID namespace; sharing one is not implemented.
--pids-limit | S | e2e: TestLimitsForkBomb.
--platform | A | run uses the host's platform; pull another with tug pull --platform.
--privileged | D | e2e: TestRunIsolation. Every capability, no seccomp filter, nothing masked or read-only; host devices are not added.
-p, --publish | S | e2e: TestNetworkPublish.
-P, --publish-all | S | e2e: TestNetworkPublishAllAndAddress.
--pull | S | always, missing (the default) or never.
-q, --quiet | S | e2e: TestRunPullOutput. The pull's progress is silenced; "Unable to find image" stays, as Docker's.
--read-only | S | e2e: TestRunIsolation.
--restart | S | e2e: TestRestartPolicies. Carried out by the container's monitor, for detached containers.
--rm | S | e2e: TestRunBasics.
--runtime | A | tug is its own runtime.
--security-opt | D | e2e: TestRunSeccompProfileFile. seccomp=unconfined or a profile file, and no-new-privileges; label= and apparmor= are accepted and ignored (tug has no SELinux or AppArmor confinement).
--shm-size | S | e2e: TestRunMounts. /dev/shm's size (64m by default, as Docker's).
--sig-proxy | A | A foreground run always forwards signals to the container (e2e: TestRunForwardsSignals).
--stop-signal | S | e2e: TestStopSignal.
--stop-timeout | S | e2e: TestStopSignal.
--storage-opt | A | Not implemented.
--sysctl | A | Not implemented.
--tmpfs | S | e2e: TestRunMounts.
-t, --tty | S | e2e: TestRunTerminalAndStdio.
--ulimit | S | e2e: TestRunIsolation.
--umask | A | Not implemented.
--use-api-socket | A | tug has no API socket.
-u, --user | S | e2e: TestRunImageConfigOverrides.
--userns | A | tug chooses the user namespace itself (rootless: subordinate ids, or one id).
--uts | A | Every container gets its own UTS namespace; sharing the host's is not implemented.
-v, --volume | D | e2e: TestRunMounts, TestVolumeCommands, TestNamedVolumeCopyUp, TestAnonymousVolumes. Bind mounts, named volumes (filled from the image when empty; nocopy) and anonymous ones (-v DEST, gone with --rm or rm -v); the SELinux and propagation options are accepted and ignored.
--volume-driver | A | Only local volumes.
--volumes-from | A | Not implemented.
-w, --workdir | S | e2e: TestRunImageConfigOverrides.
`

// runOnly are run's flags that docker create lacks. create's rows are
// run's, less these, with create's own rows in place of run's.
var runOnly = []string{"-d, --detach", "--detach-keys", "--sig-proxy"}

var compatCommands = []compatCommand{
	{cmd: "", args: []string{"version"}, rows: `
--config | A | tug reads Podman's files (registries.conf, storage.conf, auth.json), not Docker's config directory.
-c, --context | A | No daemon, so no contexts.
-D, --debug | S | Debug logs, and the chain of causes of an error.
-H, --host | A | No daemon to connect to.
-l, --log-level | S | debug, info, warn or error. (docker ps -l, --latest, is not this: see ps.)
--tls | A | No daemon to connect to.
--tlscacert | A | No daemon to connect to.
--tlscert | A | No daemon to connect to.
--tlskey | A | No daemon to connect to.
--tlsverify | A | No daemon to connect to.
--version | D | --version prints "tug version VERSION, build COMMIT" as Docker's does; -v is run's --volume, not this. e2e: TestVersionAndHelpNeedNoStore.
`, extra: map[string]string{
		"root":           "The store's root directory (Podman's default for the user).",
		"runroot":        "The store's state directory.",
		"storage-driver": "overlay or vfs.",
	}},
	{cmd: "build", args: []string{"."}, rows: `
--add-host | A | Not implemented for RUN steps.
--allow | A | No entitlements: RUN steps get the network mode of --network.
--annotation | A | Images carry no annotations yet.
--attest | A | No attestations.
--build-arg | S | e2e: TestBuildAndRun.
--build-context | A | Not implemented.
--builder | A | One builder: tug itself.
--cache-from | A | Only tug's local step cache.
--cache-to | A | Only tug's local step cache.
--call | A | Not implemented.
--cgroup-parent | A | Not implemented for RUN steps.
--check | A | Not implemented.
--compress | A | Legacy builder only: the context is read in place.
--cpu-period | A | Legacy builder only.
--cpu-quota | A | Legacy builder only.
-c, --cpu-shares | A | Legacy builder only.
--cpuset-cpus | A | Legacy builder only.
--cpuset-mems | A | Legacy builder only.
-f, --file | S | e2e: TestBuildDockerfileFromStdin. - reads the Dockerfile from stdin.
--force-rm | A | Legacy builder only: tug keeps no intermediate containers.
--iidfile | S | e2e: TestBuildAndRun.
--isolation | D | e2e: TestIsolationChrootAsRoot, TestIsolationInContainerPicksChroot. Docker's is Windows only (on Linux it takes only default); tug's, as Buildah's, takes auto (the default, and what default means: the strongest that works here), rootless (namespaces) or chroot (root that can make no namespace, as in a container: RUN steps get the host's network, processes and IPC). --debug says which auto chose.
--label | S | e2e: TestBuildAndRun.
--load | A | Not needed: the image always goes into tug's store.
-m, --memory | A | Legacy builder only.
--memory-swap | A | Legacy builder only.
--metadata-file | A | Not implemented.
--network | D | e2e: TestNetworkInBuild. private (the default), none, host, pasta or slirp4netns; default and bridge are private.
--no-cache | S | e2e: TestBuildCache.
--no-cache-filter | A | Not implemented.
-o, --output | D | e2e: TestBuildOutput. type=local (a directory), type=tar (a file), type=oci and type=docker (the image as an archive, as tug save writes it), a directory, or - (a tar on stdout), as well as the image in tug's store; no type=image or registry exporters (use tug push).
--platform | D | Accepts only the host's platform (e.g. linux/amd64) and fails for any other: tug does not emulate.
--progress | D | auto, plain, tty or quiet; no rawjson.
--provenance | A | No attestations.
--pull | S | e2e: TestBuildAndRun.
--push | A | Push with tug push.
-q, --quiet | S | e2e: TestBuildAndRun.
--rm | A | Legacy builder only: tug keeps no intermediate containers.
--sbom | A | No attestations.
--secret | S | e2e: TestBuildSecret.
--security-opt | A | Legacy builder only.
--shm-size | A | Not implemented.
--squash | A | Legacy builder only.
--ssh | S | e2e: TestBuild4SSH. default ($SSH_AUTH_SOCK), ID=SOCKET or ID=KEY[,KEY...]; steps get a read-only agent, as from BuildKit.
-t, --tag | S | e2e: TestBuildAndRun.
--target | S | e2e: TestBuildMultiStageAndTarget.
--ulimit | A | Not implemented for RUN steps.
`, extra: map[string]string{
		"timestamp":  "Every time in the image set to this Unix time, for reproducible images (default: $SOURCE_DATE_EPOCH); e2e: TestBuildReproducible.",
		"tls-verify": "Require HTTPS for non-loopback registries when pulling base images.",
	}},
	{cmd: "run", args: []string{"busybox"}, rows: runRows, extra: map[string]string{
		"tls-verify": "Require HTTPS for non-loopback registries when pulling the image.",
	}},
	{cmd: "create", args: []string{"busybox"}, rows: `
-i, --interactive | D | The container's stdin is kept open when it starts, as with run -di; tug start cannot attach to it (start -a attaches stdout and stderr).
-t, --tty | D | The container gets a terminal when it starts, as with run -dt; tug start cannot attach to it.
`, extra: map[string]string{
		"tls-verify": "Require HTTPS for non-loopback registries when pulling the image.",
		"detach":     "Accepted (create is run's grammar); a created container starts detached with tug start.",
	}},
	{cmd: "start", args: []string{"c"}, rows: `
-a, --attach | S | e2e: TestCreateStartRestart. Waits, prints the output, exits with the container's status.
--checkpoint | A | No checkpoint/restore.
--checkpoint-dir | A | No checkpoint/restore.
--detach-keys | A | tug cannot attach to a running detached container.
-i, --interactive | A | tug cannot attach stdin to a detached container.
`},
	{cmd: "exec", args: []string{"c", "true"}, rows: `
-d, --detach | A | Not implemented.
--detach-keys | A | Not implemented.
-e, --env | S | e2e: TestExec.
--env-file | A | Not implemented.
-i, --interactive | S | e2e: TestExec.
--privileged | A | Not implemented: an exec gets the container's capabilities.
-t, --tty | S | e2e: TestExec.
-u, --user | S | e2e: TestExec.
-w, --workdir | S | e2e: TestExec.
`},
	{cmd: "ps", rows: `
-a, --all | S | e2e: TestContainerLifecycle.
-f, --filter | D | e2e: TestRunLabels. status, name, id and label (label=KEY or label=KEY=VALUE) only.
--format | S | Docker's template functions, table and json.
-n, --last | A | Not implemented.
-l, --latest | A | Not implemented; tug ps -l is tug's global --log-level and wants a value.
--no-trunc | S |
-q, --quiet | S | e2e: TestContainerLifecycle.
-s, --size | A | Not implemented.
`},
	{cmd: "logs", args: []string{"c"}, rows: `
--details | A | Containers carry no log labels or env to show.
-f, --follow | S | e2e: TestLogsFollow.
--since | S | e2e: TestLogsSinceUntil.
-n, --tail | S | e2e: TestRunDetached.
-t, --timestamps | S | e2e: TestRunDetached.
--until | S | e2e: TestLogsSinceUntil.
`},
	{cmd: "stats", rows: `
-a, --all | S | e2e: TestStats.
--format | S | e2e: TestStats. Docker's template functions, table and json.
--no-stream | S | e2e: TestStats.
--no-trunc | S |
`},
	{cmd: "stop", args: []string{"c"}, rows: `
-s, --signal | S | e2e: TestStopSignal.
-t, --timeout | S | e2e: TestContainerLifecycle. Also --time, Docker's old name.
`},
	{cmd: "kill", args: []string{"c"}, rows: `
-s, --signal | S | e2e: TestContainerLifecycle.
`},
	{cmd: "rm", args: []string{"c"}, rows: `
-f, --force | S | e2e: TestContainerLifecycle.
-l, --link | A | No container links; tug rm -l is tug's global --log-level.
-v, --volumes | S | e2e: TestAnonymousVolumes.
`},
	{cmd: "images", rows: `
-a, --all | S | tug keeps no intermediate images, so the same as without.
--digests | S | e2e: TestPullByDigest.
-f, --filter | A | Not implemented; give REPOSITORY[:TAG] to list one repository.
--format | S | e2e: TestPodmanSharesTheStore. Docker's template functions, table and json.
--no-trunc | S |
-q, --quiet | S | e2e: TestImageCommands.
--tree | A | Not implemented.
`},
	{cmd: "rmi", args: []string{"img"}, rows: `
-f, --force | S | e2e: TestImageCommands.
--no-prune | A | Not implemented: untagged parents are not kept.
--platform | A | The store holds one platform's image per name.
`},
	{cmd: "tag", args: []string{"a", "b"}, rows: ``},
	{cmd: "inspect", args: []string{"x"}, rows: `
-f, --format | S | e2e: TestImageCommands. A template, or json.
-s, --size | A | Not implemented.
--type | D | image or container (no network, volume, ...: tug volume inspect shows volumes).
`},
	{cmd: "pull", args: []string{"img"}, rows: `
-a, --all-tags | S | e2e: TestPullAllTags.
--platform | S | e2e: TestPullIndexPicksHostPlatform.
-q, --quiet | S | e2e: TestPullAsRoot.
`, extra: map[string]string{
		"tls-verify": "Require HTTPS and verified certificates (loopback registries speak plain HTTP regardless).",
	}},
	{cmd: "push", args: []string{"img"}, rows: `
-a, --all-tags | A | Not implemented: push each tag.
--platform | A | The store holds one platform's image per name.
-q, --quiet | S | e2e: TestPushRoundTrip.
`, extra: map[string]string{
		"digestfile":  "Write the manifest digest to a file.",
		"format":      "Manifest format: oci or docker.",
		"compression": "Layer compression: gzip or zstd.",
		"tls-verify":  "Require HTTPS and verified certificates.",
	}},
	{cmd: "login", args: []string{"reg"}, rows: `
-p, --password | S | e2e: TestLoginPushPullLogout.
--password-stdin | S | e2e: TestLoginPushPullLogout.
-u, --username | S | e2e: TestLoginPushPullLogout.
`, extra: map[string]string{
		"tls-verify": "Require HTTPS and verified certificates.",
	}},
	{cmd: "logout", args: []string{"reg"}, rows: ``},
	{cmd: "save", args: []string{"img"}, rows: `
-o, --output | S | e2e: TestSaveLoadEachFormat.
--platform | A | The store holds one platform's image per name.
`, extra: map[string]string{
		"format": "docker-archive (docker save's), oci-archive or oci-dir; e2e: TestSaveLoadEachFormat.",
	}},
	{cmd: "load", rows: `
-i, --input | S | e2e: TestSaveLoadEachFormat. Also an OCI layout directory; compression is detected.
--platform | A | Loads the archive's image for the host's platform.
-q, --quiet | S | e2e: TestSaveLoadPipes.
`},
	{cmd: "image prune", rows: `
-a, --all | S | e2e: TestDiskFull.
--filter | A | Not implemented.
-f, --force | S | tug never prompts.
`},
	{cmd: "cp", args: []string{"c:/a", "b"}, rows: `
-a, --archive | S | e2e: TestCp.
-L, --follow-link | S | e2e: TestCpSymlinksStayInside.
-q, --quiet | S | tug prints no progress.
`},
	{cmd: "volume create", args: []string{"v"}, rows: `
--availability | A | Swarm cluster volumes.
-d, --driver | A | Only local volumes.
--group | A | Swarm cluster volumes.
--label | A | Volumes carry no labels yet.
--limit-bytes | A | Swarm cluster volumes.
-o, --opt | A | Only plain local volumes.
--required-bytes | A | Swarm cluster volumes.
--scope | A | Swarm cluster volumes.
--secret | A | Swarm cluster volumes.
--sharing | A | Swarm cluster volumes.
--topology-preferred | A | Swarm cluster volumes.
--topology-required | A | Swarm cluster volumes.
--type | A | Swarm cluster volumes.
`},
	{cmd: "volume ls", rows: `
--cluster | A | Swarm cluster volumes.
-f, --filter | A | Not implemented.
--format | S | e2e: TestVolumeCommands. Docker's template functions, table and json.
-q, --quiet | S | e2e: TestVolumeCommands.
`},
	{cmd: "volume rm", args: []string{"v"}, rows: `
-f, --force | S | e2e: TestVolumeCommands.
`},
	{cmd: "volume inspect", args: []string{"v"}, rows: `
-f, --format | S | e2e: TestVolumeCommands.
`},
	{cmd: "volume prune", rows: `
-a, --all | D | Accepted; tug has only named volumes, and prunes every one no container uses, with or without it.
--filter | A | Not implemented.
-f, --force | S | tug never prompts. e2e: TestVolumePruneAndReset.
`},
	{cmd: "volume update", absent: "Swarm cluster volumes."},
	{cmd: "system df", rows: `
--format | D | Docker's template functions, table and json; the fields are Type, Total, Active and Size (no Reclaimable).
-v, --verbose | A | Not implemented.
`},
	{cmd: "system events", absent: "No daemon, so no event stream."},
	{cmd: "system info", rows: `
-f, --format | D | e2e: TestPullRootlessSubordinateIDs. A template, or json; the fields are tug's (Store, Rootless, IDMapping, ...), not the Docker daemon's.
`},
	{cmd: "system prune", rows: `
-a, --all | S |
--filter | A | Not implemented.
-f, --force | S | tug never prompts.
--volumes | S | e2e: TestVolumePruneAndReset. Volumes no container uses (containers made before tug recorded their volumes count as using none).
`},
	{cmd: "version", rows: `
-f, --format | D | A template, or json; the fields are Client.Version, Client.GoVersion, Client.GitCommit, Client.Os and Client.Arch (no Server).
`},
	{cmd: "info", rows: `
-f, --format | D | e2e: TestPullRootlessSubordinateIDs. A template, or json; the fields are tug's (Store, Rootless, IDMapping, ...), not the Docker daemon's.
`},
}
