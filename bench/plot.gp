# make bench: ns per key by method and format, from bench.json.dat
# gnuplot -e "dat='X.dat'; out='bench.png'" bench/plot.gp
set terminal pngcairo size 1100,560 font ",10"
set output out
set title "bkey unpack over 1024-key nodes (ns per key, lower is better; 0 = n/a)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "ns per key"
set grid ytics
set key top left
plot dat using 2:xtic(1) title "walk", \
     '' using 3 title "generic\\_c", \
     '' using 4 title "byte\\_aligned\\_c", \
     '' using 5 title "x86\\_loop", \
     '' using 6 title "bpf\\_generic", \
     '' using 7 title "bpf\\_generated (table walk)", \
     '' using 8 title "bpf\\_generated\\_u64s", \
     '' using 9 title "bpf\\_shape (table walk)"
