/** The version of this Allium (the package's version; the CLI's --version and allium_build_info report it). */
export const ALLIUM_VERSION = '0.1.0';
