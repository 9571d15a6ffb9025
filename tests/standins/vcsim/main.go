// Sirocco's vSphere stand-in: govmomi's simulator (vcsim) as an ESX host or a vCenter.
//
//	vcsim -mode esx|vc -listen 127.0.0.1:PORT -username U -password P [-images N] [-vms N]
//
// Prints "VCSIM_URL=https://127.0.0.1:PORT/sdk" once it serves (TLS, self-signed),
// and runs until SIGTERM/SIGINT, removing its datastore directories on the way out.
// The inventory is the simulator's stock ESX() or VPX() model plus N seed images, made
// through the API as a user would: in vc mode templates "template0"... cloned from the
// first VM; in esx mode (ESX has no templates) 16 MiB disk images
// "[LocalDS_0] sirocco-images/image0.vmdk"..., where Sirocco's connector looks for them.
// One faithful touch: a disk created by VirtualDiskManager gets its capacity as file size
// (sparse), so a datastore browser's fileSize shows it, as real ESX reports capacityKb
// (vcsim leaves such files empty). The same holds when a disk grows: through
// VirtualDiskManager.ExtendVirtualDisk_Task (which vcsim 0.24 lacks; added here as the API
// reference describes it: the disk file grows to newCapacityKb, never shrinks) and through a
// VM's ReconfigVM_Task editing a disk device's capacityInKB (vSphere extends the file).
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// sizedDisks sizes the files of new virtual disks to their capacity (see above).
// (Embedded by value: the simulator finds the mo type by walking first struct fields.)
type sizedDisks struct{ simulator.VirtualDiskManager }

func (m *sizedDisks) CreateVirtualDiskTask(ctx *simulator.Context, req *types.CreateVirtualDisk_Task) soap.HasFault {
	res := m.VirtualDiskManager.CreateVirtualDiskTask(ctx, req)
	if spec, ok := req.Spec.(*types.FileBackedVirtualDiskSpec); ok {
		if file := diskFile(req.Name); file != "" {
			_ = os.Truncate(file, spec.CapacityKb*1024)
		}
	}
	return res
}

// ExtendVirtualDiskTask grows a disk file to newCapacityKb. A smaller capacity is refused
// (InvalidArgument newCapacityKb: virtual disks do not shrink), a missing file is FileNotFound.
func (m *sizedDisks) ExtendVirtualDiskTask(ctx *simulator.Context, req *types.ExtendVirtualDisk_Task) soap.HasFault {
	task := simulator.CreateTask(m, "extendVirtualDisk", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		file := diskFile(req.Name)
		info, err := os.Stat(file)
		if file == "" || err != nil {
			return nil, &types.FileNotFound{FileFault: types.FileFault{File: req.Name}}
		}
		if req.NewCapacityKb*1024 < info.Size() {
			return nil, &types.InvalidArgument{InvalidProperty: "newCapacityKb"}
		}
		if err := os.Truncate(file, req.NewCapacityKb*1024); err != nil {
			return nil, &types.CannotAccessFile{FileFault: types.FileFault{File: req.Name}}
		}
		return nil, nil
	})
	return &methods.ExtendVirtualDisk_TaskBody{Res: &types.ExtendVirtualDisk_TaskResponse{Returnval: task.Run()}}
}

// diskFile is the local file of a datastore path "[ds] dir/name.vmdk", or "".
func diskFile(name string) string {
	var p object.DatastorePath
	if !p.FromString(name) {
		return ""
	}
	for _, e := range simulator.Map.All("Datastore") {
		if ds := e.(*simulator.Datastore); ds.Name == p.Datastore {
			return filepath.Join(ds.Info.GetDatastoreInfo().Url, p.Path)
		}
	}
	return ""
}

// diskSizer watches VMs' device lists: a disk device whose capacityInKB passes its file's
// size grew (a ReconfigVM_Task edit), and its file grows with it.
type diskSizer struct{}

func (diskSizer) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "SiroccoDiskSizer", Value: "disk-sizer"}
}

func (diskSizer) PutObject(mo.Reference) {}

func (diskSizer) RemoveObject(types.ManagedObjectReference) {}

func (diskSizer) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	vm, ok := obj.(*mo.VirtualMachine)
	if !ok || vm.Config == nil {
		return
	}
	for _, change := range changes {
		if change.Name != "config.hardware.device" {
			continue
		}
		for _, device := range vm.Config.Hardware.Device {
			disk, isDisk := device.(*types.VirtualDisk)
			if !isDisk {
				continue
			}
			backing, isFile := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !isFile {
				continue
			}
			file := diskFile(backing.FileName)
			if info, err := os.Stat(file); err == nil && info.Size() < disk.CapacityInKB*1024 {
				_ = os.Truncate(file, disk.CapacityInKB*1024)
			}
		}
	}
}

func main() {
	mode := flag.String("mode", "esx", "esx (a standalone host) or vc (a vCenter)")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	user := flag.String("username", "user", "login user name")
	pass := flag.String("password", "pass", "login password")
	images := flag.Int("images", 1, "seed images to create: templates (vc) or disk images (esx)")
	vms := flag.Int("vms", 0, "VMs per resource pool (vc: 2 pools, esx: 1); 0 keeps the model's default")
	flag.Parse()

	model := simulator.ESX()
	if *mode == "vc" {
		model = simulator.VPX()
	} else if *mode != "esx" {
		log.Fatalf("unknown -mode %q", *mode)
	}
	if *vms > 0 { // the connector benchmark lists about 1,000 VMs
		model.Machine = *vms
	}
	defer model.Remove()
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	vdm := simulator.Map.VirtualDiskManager().(*simulator.VirtualDiskManager)
	simulator.Map.Put(&sizedDisks{*vdm})
	simulator.Map.AddHandler(diskSizer{})

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	model.Service.TLS = new(tls.Config)
	server := model.Service.NewServer()
	defer server.Close()

	if err := makeImages(server.URL, *mode, *images); err != nil {
		log.Fatal(err)
	}
	u := *server.URL
	u.User = nil
	fmt.Printf("VCSIM_URL=%s\n", u.String())
	_ = os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

// makeImages makes n seed images through the API: templates (vc) or disk images (esx).
func makeImages(u *url.URL, mode string, n int) error {
	if n < 1 {
		return nil
	}
	ctx := context.Background()
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		return err
	}
	defer func() { _ = c.Logout(ctx) }()
	if mode == "esx" {
		dc := object.NewDatacenter(c.Client, simulator.Map.Any("Datacenter").Reference())
		dir := fmt.Sprintf("[%s] sirocco-images", simulator.Map.Any("Datastore").Entity().Name)
		if err := object.NewFileManager(c.Client).MakeDirectory(ctx, dir, dc, true); err != nil {
			return err
		}
		spec := &types.FileBackedVirtualDiskSpec{CapacityKb: 16 << 10} // 16 MiB: vcsim copies files byte by byte
		spec.AdapterType, spec.DiskType = "lsiLogic", "thin"
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("%s/image%d.vmdk", dir, i)
			task, err := object.NewVirtualDiskManager(c.Client).CreateVirtualDisk(ctx, name, dc, spec)
			if err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	vms := simulator.Map.All("VirtualMachine")
	sort.Slice(vms, func(i, j int) bool { return vms[i].Entity().Name < vms[j].Entity().Name })
	src := vms[0].(*simulator.VirtualMachine)
	vm := object.NewVirtualMachine(c.Client, src.Reference())
	folder := object.NewFolder(c.Client, *src.Parent)
	for i := 0; i < n; i++ {
		spec := types.VirtualMachineCloneSpec{Template: true}
		task, err := vm.Clone(ctx, folder, fmt.Sprintf("template%d", i), spec)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
