"""siroccod: the Sirocco daemon, a DMTF CIMI endpoint over local hypervisor hosts."""

__version__ = "0.1.0"
