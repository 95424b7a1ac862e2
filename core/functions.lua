#!lua name=switchboard
