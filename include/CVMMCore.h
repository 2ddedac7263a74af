/* CVMMCore: the C core of the VMM. This umbrella is the only C API Swift sees.
 * Every call returns 0 or a negative errno unless it says otherwise. */
#ifndef CVMMCORE_H
#define CVMMCORE_H

#include "vmm_bus.h"
#include "vmm_vm.h"
#include "vmm_memory.h"
#include "vmm_vcpu.h"
#include "vmm_irq.h"
#include "vmm_gsi.h"
#include "vmm_log.h"
#include "vmm_pci.h"
#include "vmm_msix.h"
#include "vmm_virtq.h"
#include "vmm_virtio.h"
#include "vmm_tap.h"
#include "vmm_vfio.h"
#include "vmm_serial.h"
#include "vmm_power.h"
#include "vmm_pvpanic.h"
#include "vmm_rtc.h"
#include "vmm_pvh.h"
#include "vmm_privileges.h"
#include "vmm_seccomp.h"
#include "vmm_landlock.h"
#include "vmm_sys.h"
#include "vmm_ged.h"
#include "vmm_pci_hotplug.h"
#include "vmm_cpu_hotplug.h"
#include "vmm_mem_hotplug.h"

#endif
