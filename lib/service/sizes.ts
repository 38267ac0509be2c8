// VBS shows sizes in GB of 2^30 bytes, each rounded up.
export const GIB = 1024 ** 3;

export const gigabytes = (bytes: number) => Math.ceil(bytes / GIB);

/** The largest volume the API accepts: 64 TiB, as EBS. */
export const MAX_VOLUME_GB = 65_536;
