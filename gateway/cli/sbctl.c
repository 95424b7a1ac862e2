/* SPDX-License-Identifier: MIT */
/* sbctl entry point (being written). */
int main(void)
{
    return 0;
}
