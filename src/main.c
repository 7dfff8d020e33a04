/* main.c - placeholder until the command line lands (same commit series). */
#include "autoconfig.h"

int main(void)
{
	return 0;
}
