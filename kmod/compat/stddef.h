#include <linux/stddef.h>
#include "stdint.h"
