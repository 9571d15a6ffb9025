"""The spec the images suite builds (shared by its tests and the benchmark)."""

# A realistic spec: an extra package, a file with a mode, a command run in the image, every format.
SPEC = {
    "name": "sirocco-images-test",
    "distribution": "debian-12",
    "packages": ["curl"],
    "files": {"/etc/sirocco/hello.txt": {"content": "hello from the spec\n", "mode": "0640"},
              "/usr/local/bin/sirocco-hello": {"content": "#!/bin/sh\necho hello\n", "mode": "0755"}},
    "run": ["echo built-by-run > /etc/sirocco/run-marker", "test -x /usr/local/bin/sirocco-hello"],
    "size_gib": 4,
    "formats": ["qcow2", "raw", "vmdk", "vhd"],
    "cloud_init": True,
}

# Without cloud-init: the image's own DHCP (eth0) and first-boot host keys, no datasource needed.
SPEC_PLAIN = {"name": "sirocco-images-plain", "cloud_init": False, "formats": ["qcow2"], "size_gib": 2}
