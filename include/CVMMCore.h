/* CVMMCore: the C core of the VMM. This umbrella is the only C API Swift sees.
 * Every call returns 0 or a negative errno unless it says otherwise. */
#ifndef CVMMCORE_H
#define CVMMCORE_H

#include "vm/vmm_bus.h"
#include "vm/vmm_vm.h"
#include "vm/vmm_memory.h"
#include "vm/vmm_dirty.h"
#include "migration/vmm_migration.h"
#include "vm/vmm_vcpu.h"
#include "vm/vmm_state.h"
#include "irq/vmm_irq.h"
#include "irq/vmm_gsi.h"
#include "common/vmm_log.h"
#include "pci/vmm_pci.h"
#include "irq/vmm_msix.h"
#include "virtio/vmm_virtq.h"
#include "virtio/vmm_virtio.h"
#include "net/vmm_tap.h"
#include "vfio/vmm_vfio.h"
#include "iommu/vmm_iommu.h"
#include "platform/vmm_serial.h"
#include "platform/vmm_power.h"
#include "platform/vmm_pvpanic.h"
#include "platform/vmm_rtc.h"
#include "vm/vmm_pvh.h"
#include "sandbox/vmm_privileges.h"
#include "sandbox/vmm_seccomp.h"
#include "sandbox/vmm_landlock.h"
#include "common/vmm_sys.h"
#include "platform/vmm_ged.h"
#include "platform/vmm_platform.h"
#include "platform/vmm_pci_hotplug.h"
#include "platform/vmm_cpu_hotplug.h"
#include "platform/vmm_mem_hotplug.h"
#include "platform/vmm_console_socket.h"

#endif
