/* SPDX-License-Identifier: MIT */
/* switchboard daemon entry point (being written). */
int main(void)
{
    return 0;
}
