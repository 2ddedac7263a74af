// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test module for the L2 guest: a driver for QEMU's edu device
 * (1234:11e8) that takes its interrupt as MSI (msi=1, the default) or INTx
 * (msi=0), raises it three times and logs how many arrived:
 *   "edu_irq 0000:00:03.0: msi interrupts=3 of 3"
 */
#include <linux/completion.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/pci.h>

#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64

static int msi = 1;
module_param(msi, int, 0444);
MODULE_PARM_DESC(msi, "1: MSI, 0: INTx");

struct edu {
	void __iomem *bar;
	atomic_t count;
	struct completion raised;
};

static irqreturn_t edu_irq(int irq, void *data)
{
	struct edu *edu = data;
	u32 status = ioread32(edu->bar + EDU_IRQ_STATUS);

	if (!status)
		return IRQ_NONE;
	iowrite32(status, edu->bar + EDU_IRQ_ACK);
	atomic_inc(&edu->count);
	complete(&edu->raised);
	return IRQ_HANDLED;
}

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct edu *edu;
	int ret, i;

	edu = devm_kzalloc(&pdev->dev, sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	init_completion(&edu->raised);
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pcim_iomap_regions(pdev, 1, "edu_irq");
	if (ret)
		return ret;
	edu->bar = pcim_iomap_table(pdev)[0];
	/* An MSI is a write by the device: it needs bus mastering. */
	pci_set_master(pdev);
	ret = pci_alloc_irq_vectors(pdev, 1, 1, msi ? PCI_IRQ_MSI : PCI_IRQ_LEGACY);
	if (ret < 0) {
		dev_err(&pdev->dev, "no %s vector: %d\n", msi ? "msi" : "intx", ret);
		return ret;
	}
	ret = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, 0), edu_irq, msi ? 0 : IRQF_SHARED, "edu_irq", edu);
	if (ret)
		return ret;
	for (i = 0; i < 3; i++) {
		reinit_completion(&edu->raised);
		iowrite32(1, edu->bar + EDU_IRQ_RAISE);
		wait_for_completion_timeout(&edu->raised, 5 * HZ);
	}
	dev_info(&pdev->dev, "%s interrupts=%d of 3\n", msi ? "msi" : "intx", atomic_read(&edu->count));
	return 0;
}

static void edu_remove(struct pci_dev *pdev)
{
	pci_free_irq_vectors(pdev);
}

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name = "edu_irq",
	.id_table = edu_ids,
	.probe = edu_probe,
	.remove = edu_remove,
};
module_pci_driver(edu_driver);

MODULE_DESCRIPTION("Lab test driver for QEMU's edu device: counts its interrupts");
MODULE_LICENSE("GPL");
